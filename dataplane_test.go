package grpcauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// Client.Dial reaches another endpoint (a Flyte 2 data plane) with the
// same keeper: one token for both, one refresh when either rejects it.
func TestDialSharesTheKeeperWithAnotherEndpoint(t *testing.T) {
	f := newFixture(t, fixtureOptions{plaintext: true})
	tokens, control := f.tokens, f.admin
	data, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens))
	require.NoError(t, err)
	t.Cleanup(data.Close)

	cfg := f.config()
	cfg.Insecure = true
	c := dial(t, cfg)
	dc, err := c.Dial("dns:///" + data.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = dc.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cp, dp := testserver.NewEchoClient(c.Conn), testserver.NewEchoClient(dc)

	for _, e := range []*testserver.EchoClient{cp, dp, cp, dp} {
		got, err := e.Unary(ctx, "x")
		require.NoError(t, err)
		assert.Equal(t, "x", got)
	}
	assert.EqualValues(t, 1, tokens.Issued(), "one token for both endpoints")
	assert.Equal(t, control.LastEchoMetadata().Get("authorization"), data.LastEchoMetadata().Get("authorization"))

	tokens.RevokeAll()
	got, err := dp.Bidi(ctx, []string{"a", "b"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, got)
	_, err = cp.Unary(ctx, "y")
	require.NoError(t, err)
	assert.EqualValues(t, 2, tokens.Issued(), "the data plane's rejection refreshed the token for both")
	oauth2Calls, _ := data.MetadataCalls()
	assert.Zero(t, oauth2Calls, "the data plane is not asked for metadata")

	_, err = c.Dial("https://not-a-target")
	assert.ErrorContains(t, err, "is a URL")
}
