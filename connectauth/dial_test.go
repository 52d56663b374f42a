package connectauth_test

import (
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// flyte2Rig is a TLS Flyte 2 fake whose tokens come from a token server,
// and the Flyte config that reaches it.
type flyte2Rig struct {
	tokens *testserver.TokenServer
	srv    *testserver.ConnectServer
	cfg    grpcauth.Config
}

func newFlyte2Rig(t *testing.T, plaintext bool) *flyte2Rig {
	t.Helper()
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	opts := []testserver.ConnectOption{
		testserver.WithConnectValidator(tokens),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}),
		testserver.WithFlyte2PublicConfig(&flyte2pb.GetPublicClientConfigResponse{DataplaneDomain: "dp.example"}),
	}
	cfg := grpcauth.Config{ClientID: clientID, ClientSecret: clientSecret, Insecure: plaintext}
	if !plaintext {
		ca, err := testserver.NewCA()
		require.NoError(t, err)
		caFile, err := ca.WriteCertFile(t.TempDir())
		require.NoError(t, err)
		cfg.CACertFilePath = caFile
		opts = append(opts, testserver.WithConnectTLS(ca))
	}
	srv, err := testserver.NewConnectServer(opts...)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	cfg.Endpoint = "dns:///" + srv.Addr()
	return &flyte2Rig{tokens: tokens, srv: srv, cfg: cfg}
}

func newClient(t *testing.T, cfg grpcauth.Config, opts ...grpcauth.Option) *connectauth.Client {
	t.Helper()
	c, err := connectauth.New(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestNewFromFlyteConfig(t *testing.T) {
	for _, plaintext := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "insecure"}[plaintext], func(t *testing.T) {
			r := newFlyte2Rig(t, plaintext)
			c := newClient(t, r.cfg)
			scheme := map[bool]string{false: "https://", true: "http://"}[plaintext]
			assert.Equal(t, scheme+r.srv.Addr(), c.BaseURL)
			for _, p := range protocols {
				echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, append(c.Options, p.opts...)...)
				resp, err := echo.Echo(ctx(t), req(p.name))
				require.NoError(t, err, p.name)
				assert.Equal(t, p.name, resp.Msg.GetValue())
			}
			assert.Equal(t, int64(1), r.tokens.Issued())
			assert.False(t, r.srv.MetadataRPCsSawToken())
			o, p := r.srv.MetadataCalls()
			assert.Equal(t, [2]int64{1, 1}, [2]int64{o, p}, "Flyte 2's service was asked")
			got, err := c.ConfigStore.GetClientConfig(ctx(t))
			require.NoError(t, err)
			assert.Equal(t, "dp.example", got.DataplaneDomain)
		})
	}
}

// Without an identity provider, Flyte 2 cannot say where the token
// endpoint is: the call's error names the key to set, and setting it works.
func TestNewNoIdentityProvider(t *testing.T) {
	r := newFlyte2Rig(t, false)
	r.srv.SetOAuth2MetadataError(connect.NewError(connect.CodeUnimplemented, nil))
	c := newClient(t, r.cfg)
	echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
	_, err := echo.Echo(ctx(t), req("x"))
	require.Error(t, err)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	require.ErrorIs(t, err, configstore.ErrNoIdentityProvider)
	assert.Contains(t, err.Error(), "admin.tokenUrl")

	cfg := r.cfg
	cfg.TokenURL = r.tokens.TokenURL()
	c = newClient(t, cfg)
	echo = flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
	_, err = echo.Echo(ctx(t), req("x"))
	require.NoError(t, err)
}

func TestNewWithDiscoveryAndService(t *testing.T) {
	r := newFlyte2Rig(t, false)
	disc, err := configstore.NewDiscovery(r.srv.URL(), configstore.WithHTTPClient(r.srv.HTTPClient()), configstore.WithRepublishedMetadata())
	require.NoError(t, err)
	c := newClient(t, r.cfg, grpcauth.WithConfigStore(disc))
	echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
	_, err = echo.Echo(ctx(t), req("x"))
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.srv.WellKnownCalls())
	o, p := r.srv.MetadataCalls()
	assert.Zero(t, o+p)

}

func TestNewWithoutAuthAndErrors(t *testing.T) {
	// No authType, no clientId: the default browser login, started only
	// when a server asks; an open server costs no token request.
	open, err := testserver.NewConnectServer(testserver.WithConnectOpen())
	require.NoError(t, err)
	t.Cleanup(open.Close)
	c := newClient(t, grpcauth.Config{Endpoint: open.Addr(), Insecure: true})
	assert.Equal(t, "http://"+open.Addr(), c.BaseURL)
	echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
	_, err = echo.Echo(ctx(t), req("x"))
	require.NoError(t, err)
	assert.Zero(t, c.Authenticator.Stats().TokenRequests)
	assert.Equal(t, []string{""}, open.EchoAuthValues())

	c = newClient(t, grpcauth.Config{Endpoint: "dns:///flyte.example:443", ClientID: "id", ClientSecret: "s"})
	assert.Equal(t, "https://flyte.example:443", c.BaseURL)

	_, err = connectauth.New(grpcauth.Config{})
	require.ErrorContains(t, err, "endpoint is empty")
	_, err = connectauth.New(grpcauth.Config{Endpoint: "x:1", CACertFilePath: "/nonexistent/ca.pem"})
	require.ErrorContains(t, err, "caCertFilePath")
	_, err = connectauth.New(grpcauth.Config{Endpoint: "x:1", ClientID: "id"})
	require.ErrorIs(t, err, grpcauth.ErrNoClientSecret)
}

// No secret or token in anything printed.
func TestNothingPrintsSecrets(t *testing.T) {
	r := newFlyte2Rig(t, false)
	c := newClient(t, r.cfg)
	echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
	_, err := echo.Echo(ctx(t), req("x"))
	require.NoError(t, err)
	_, bearer, ok := credOK(c.Authenticator.Credential(ctx(t)))
	require.True(t, ok)
	token := strings.TrimPrefix(bearer, "Bearer ")
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", *c),
		fmt.Sprintf("%+v", c.Interceptor), fmt.Sprintf("%#v", c.Interceptor),
	} {
		assert.NotContains(t, s, clientSecret)
		assert.NotContains(t, s, token)
	}
	assert.Contains(t, fmt.Sprint(c), c.BaseURL)
}

// credOK is Credential as the (key, value, ok) of a test that only asks
// whether a credential is at hand.
func credOK(key, value string, err error) (string, string, bool) { return key, value, err == nil }
