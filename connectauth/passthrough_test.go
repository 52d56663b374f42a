package connectauth_test

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/flyteauth/grpcauth"
)

// With authType Passthrough, each request carries the headers its caller
// set, in every protocol, and nothing of grpcauth's.
func TestPassthroughSendsTheCallersHeaders(t *testing.T) {
	r := newFlyte2Rig(t, true)
	tok, err := (&clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: r.tokens.TokenURL()}).Token(t.Context())
	require.NoError(t, err)
	c := newClient(t, grpcauth.Config{Endpoint: r.cfg.Endpoint, Insecure: true, AuthType: grpcauth.AuthTypePassthrough})
	assert.Nil(t, c.Interceptor)
	assert.Nil(t, c.Authenticator)
	assert.Empty(t, c.Options)

	for _, p := range protocols {
		rq := req(p.name)
		rq.Header().Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := epEcho(c, p.opts...).Echo(ctx(t), rq)
		require.NoError(t, err, p.name)
		assert.Equal(t, p.name, resp.Msg.GetValue())

		before := r.srv.EchoCalls()
		_, err = epEcho(c, p.opts...).Echo(ctx(t), req("without"))
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), p.name)
		assert.Equal(t, before+1, r.srv.EchoCalls(), "%s: a refusal is not retried", p.name)
	}
	oauth2Calls, publicCalls := r.srv.MetadataCalls()
	assert.Zero(t, oauth2Calls+publicCalls)
	assert.EqualValues(t, 1, r.tokens.Issued(), "no token requested but the caller's")
}
