package interop

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// Hydra v2.3.0 serves OpenID Connect's discovery document only: its RFC
// 8414 path answers 404. The discovery store asks RFC 8414's path first
// and falls back to OpenID Connect's.
func TestHydraServesOpenIDConfigurationOnly(t *testing.T) {
	for path, want := range map[string]int{
		"/.well-known/oauth-authorization-server": http.StatusNotFound,
		"/.well-known/openid-configuration":       http.StatusOK,
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, hy.publicURL+path, nil)
		require.NoError(t, err)
		resp, err := hy.http.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, path)
	}
}

// TestDiscoveryStoreReadsHydra reads Hydra's real metadata document through
// the discovery store and gets a client-credentials token from the token
// endpoint it names.
func TestDiscoveryStoreReadsHydra(t *testing.T) {
	disc, err := configstore.NewDiscovery(hy.publicURL, configstore.WithHTTPClient(hy.http))
	require.NoError(t, err)
	cfg, err := disc.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, hy.TokenURL(), cfg.TokenEndpoint)
	assert.True(t, strings.HasPrefix(cfg.AuthorizationEndpoint, hy.publicURL+"/"), cfg.AuthorizationEndpoint)
	assert.Empty(t, cfg.Scopes, "scopes_supported is not what to ask for")

	c := hy.CreateClient(t, clientSpec{})
	auth, err := authenticator.NewClientCredentialsAuthenticator(hy.publicURL, c.ID, c.Secret, disc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = auth.Close() })
	require.NoError(t, auth.RefreshCredentials(t.Context()))
	key, value, ok := credOK(auth.Credential(t.Context()))
	require.True(t, ok)
	assert.Equal(t, "authorization", key)
	token, found := strings.CutPrefix(value, "Bearer ")
	require.True(t, found)
	in := hy.Introspect(t, token)
	assert.True(t, in.Active)
	assert.Equal(t, c.ID, in.ClientID)
}

// TestConnectClientWithHydra is the Flyte 2 stack: a connect-go client
// built from a Flyte config by connectauth.New, its token endpoint read
// from Hydra's discovery document, calling a connect-go server that asks
// Hydra whether the token is active, over the three protocols.
func TestConnectClientWithHydra(t *testing.T) {
	srv, err := testserver.NewConnectServer(testserver.WithConnectValidator(hy.introspect))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	// Flyte 2 without an identity provider of its own.
	srv.SetOAuth2MetadataError(connect.NewError(connect.CodeUnimplemented, nil))

	disc, err := configstore.NewDiscovery(hy.publicURL, configstore.WithHTTPClient(hy.http))
	require.NoError(t, err)
	hc := hy.CreateClient(t, clientSpec{Secret: specialSecret})
	c, err := connectauth.New(grpcauth.Config{Endpoint: srv.Addr(), Insecure: true, ClientID: hc.ID, ClientSecret: hc.Secret},
		grpcauth.WithConfigStore(disc))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	for _, proto := range [][]connect.ClientOption{nil, {connect.WithGRPC()}, {connect.WithGRPCWeb()}} {
		echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, append(c.Options, proto...)...)
		resp, err := echo.Echo(ctx, connect.NewRequest(&flyte2pb.EchoRequest{Value: "hydra"}))
		require.NoError(t, err)
		assert.Equal(t, "hydra", resp.Msg.GetValue())
	}
	assert.LessOrEqual(t, srv.Rejected(), int64(1), "only the first call, sent before any token, may be rejected")
	assert.Equal(t, int64(1), c.Authenticator.Stats().TokenRequests)
}

// credOK is Credential as the (key, value, ok) of a test that only asks
// whether a credential is at hand.
func credOK(key, value string, err error) (string, string, bool) { return key, value, err == nil }
