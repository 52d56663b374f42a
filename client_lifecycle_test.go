package grpcauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// TestFirstCallCarriesAToken: with credentials configured, the first call
// on a fresh connection makes one token request and reaches a protected
// server once, in every call shape.
func TestFirstCallCarriesAToken(t *testing.T) {
	shapes := map[string]func(ctx context.Context, e *testserver.EchoClient) error{
		"unary": func(ctx context.Context, e *testserver.EchoClient) error {
			_, err := e.Unary(ctx, "x")
			return err
		},
		"server-stream": func(ctx context.Context, e *testserver.EchoClient) error {
			_, err := e.ServerStream(ctx, "x")
			return err
		},
		"client-stream": func(ctx context.Context, e *testserver.EchoClient) error {
			_, err := e.ClientStream(ctx, []string{"a", "b"})
			return err
		},
		"bidi": func(ctx context.Context, e *testserver.EchoClient) error {
			_, err := e.Bidi(ctx, []string{"a", "b"})
			return err
		},
	}
	f := newFixture(t, fixtureOptions{})
	for name, call := range shapes {
		t.Run(name, func(t *testing.T) {
			f.tokens.ResetCounters()
			f.admin.ResetCounters()
			c := dial(t, f.config())
			require.NoError(t, call(callCtx(t), testserver.NewEchoClient(c.Conn)))
			assert.EqualValues(t, 1, f.admin.EchoCalls(), "one attempt: the server rejected nothing")
			assert.Zero(t, f.admin.Rejected())
			assert.EqualValues(t, 1, f.tokens.Requests())
			assert.EqualValues(t, 1, c.Authenticator.Stats().FirstUse)
		})
	}
}

// TestFullyConfiguredMakesNoMetadataRPC: a config that names the token URL,
// the scopes and the header key needs nothing from AuthMetadataService
// (flyte#2957).
func TestFullyConfiguredMakesNoMetadataRPC(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cfg := f.config()
	cfg.TokenURL = f.tokens.TokenURL()
	cfg.Scopes = []string{"all"}
	cfg.AuthorizationHeader = "authorization"
	c := dial(t, cfg)
	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.NoError(t, err)
	oauth2Calls, publicCalls := f.admin.MetadataCalls()
	assert.Zero(t, oauth2Calls+publicCalls, "no metadata RPC")
	assert.Equal(t, "all", f.tokens.LastRequest().Form.Get("scope"))

	// Only part of it named: the store is asked for the rest only.
	for _, tt := range []struct {
		name                   string
		change                 func(*grpcauth.Config)
		wantOAuth2, wantPublic int64
	}{
		{name: "tokenUrl alone", change: func(c *grpcauth.Config) { c.Scopes, c.AuthorizationHeader = nil, "" }, wantPublic: 1},
		{name: "scopes and header alone", change: func(c *grpcauth.Config) { c.TokenURL = "" }, wantOAuth2: 1},
		{name: "the server's audience asked for", change: func(c *grpcauth.Config) { c.UseAudienceFromAdmin = true }, wantPublic: 1},
		{name: "nothing named", change: func(c *grpcauth.Config) { c.TokenURL, c.Scopes, c.AuthorizationHeader = "", nil, "" }, wantOAuth2: 1, wantPublic: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.admin.ResetCounters()
			partial := cfg
			tt.change(&partial)
			c := dial(t, partial)
			_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
			require.NoError(t, err)
			oauth2Calls, publicCalls := f.admin.MetadataCalls()
			assert.Equal(t, tt.wantOAuth2, oauth2Calls, "GetOAuth2Metadata")
			assert.Equal(t, tt.wantPublic, publicCalls, "GetPublicClientConfig")
		})
	}
}

// TestCloseMidRefresh: closing the client while its token request hangs
// ends the request and the waiting call promptly; TestMain's goleak check
// proves nothing runs on.
func TestCloseMidRefresh(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.tokens.SetFault(testserver.FaultHang())
	c, err := grpcauth.New(f.config())
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := testserver.NewEchoClient(c.Conn).Unary(context.Background(), "x")
		done <- err
	}()
	require.Eventually(t, func() bool { return f.tokens.Requests() == 1 }, 10*time.Second, 5*time.Millisecond, "the token request is in flight")
	require.NoError(t, c.Close())
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not end after Close")
	}
	assert.EqualValues(t, 1, c.Authenticator.Stats().Failures, "the request ended")
}
