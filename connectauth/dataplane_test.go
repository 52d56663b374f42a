package connectauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// OptionsFor authenticates a generated client of another base URL (a
// Flyte 2 data plane) with the same keeper: one token for both, one
// refresh when either rejects it.
func TestOptionsForSharesTheKeeperWithAnotherBaseURL(t *testing.T) {
	r := newFlyte2Rig(t, true)
	data, err := testserver.NewConnectServer(testserver.WithConnectValidator(r.tokens))
	require.NoError(t, err)
	t.Cleanup(data.Close)
	c := newClient(t, r.cfg)
	opts, err := c.OptionsFor(data.URL())
	require.NoError(t, err)
	dp := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, data.URL(), opts...)

	for _, p := range protocols {
		_, err := epEcho(c, p.opts...).Echo(ctx(t), req(p.name))
		require.NoError(t, err, p.name)
		resp, err := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, data.URL(), append(opts, p.opts...)...).Echo(ctx(t), req(p.name))
		require.NoError(t, err, p.name)
		assert.Equal(t, p.name, resp.Msg.GetValue())
	}
	assert.EqualValues(t, 1, r.tokens.Issued(), "one token for both base URLs")

	r.tokens.RevokeAll()
	_, err = dp.Echo(ctx(t), req("after revocation"))
	require.NoError(t, err)
	_, err = epEcho(c).Echo(ctx(t), req("control plane"))
	require.NoError(t, err)
	assert.EqualValues(t, 2, r.tokens.Issued(), "the data plane's rejection refreshed the token for both")

	_, err = c.OptionsFor("not a URL")
	assert.ErrorContains(t, err, "is not an absolute http(s) URL")
}
