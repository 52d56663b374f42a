package testserver_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

const proxyToken = "proxy-token-1"

// proxied is an admin server and a token server, both behind one proxy.
type proxied struct {
	proxy    *testserver.Proxy
	tokens   *testserver.TokenServer
	admin    *testserver.AdminServer
	conn     *grpc.ClientConn // to the proxy's gRPC front
	tokenURL string           // the token endpoint through the proxy
}

func newProxied(t *testing.T, proxyOpts ...testserver.ProxyOption) *proxied {
	t.Helper()
	p, err := testserver.NewProxy(proxyOpts...)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	p.Allow(proxyToken)
	ts := newTokenServer(t)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(ts),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: "https://token.example/"}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	addr, err := p.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	front, err := p.FrontHTTP(ts.URL(), nil)
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &proxied{proxy: p, tokens: ts, admin: admin, conn: conn, tokenURL: front + testserver.TokenPath}
}

func withProxyToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "proxy-authorization", "Bearer "+token)
}

// requireProxyRefusal checks that err is the proxy's refusal as a gRPC
// client sees it: not a gRPC answer but an HTTP status.
func requireProxyRefusal(t *testing.T, err error, code codes.Code, httpStatus string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, code, status.Code(err), "%v", err)
	assert.True(t, strings.HasPrefix(status.Convert(err).Message(), "unexpected HTTP status code received from server: "+httpStatus), "%v", err)
}

func TestProxyRefusesCallsWithoutToken(t *testing.T) {
	x := newProxied(t)
	c := testserver.NewEchoClient(x.conn)
	for _, ctx := range []context.Context{
		t.Context(),
		withProxyToken(t.Context(), "unknown"),
		metadata.AppendToOutgoingContext(t.Context(), "proxy-authorization", "Basic "+proxyToken),
	} {
		for _, shape := range echoShapes {
			requireProxyRefusal(t, shape.call(ctx, t, c), codes.Unauthenticated, "401")
		}
		_, err := authmetarpc1.NewAuthMetadataServiceClient(x.conn).GetOAuth2Metadata(ctx, &authmetapb.OAuth2MetadataRequest{})
		requireProxyRefusal(t, err, codes.Unauthenticated, "401")
	}
	assert.Zero(t, x.admin.EchoCalls(), "the backend saw nothing")
	oauth, public := x.admin.MetadataCalls()
	assert.Zero(t, oauth+public)
	assert.Equal(t, int64(3*(len(echoShapes)+1)), x.proxy.Rejected())
	assert.Zero(t, x.proxy.Passed())
}

func TestProxyPassesEveryCallShape(t *testing.T) {
	x := newProxied(t)
	ctx := withProxyToken(t.Context(), proxyToken)
	token := issueToken(t, x.tokens)
	c := testserver.NewEchoClient(x.conn)
	for _, shape := range echoShapes {
		t.Run(shape.name, func(t *testing.T) {
			require.NoError(t, shape.call(withToken(ctx, "authorization", "Bearer "+token), t, c))
			md := x.admin.LastEchoMetadata()
			assert.Empty(t, md.Get("proxy-authorization"), "the proxy consumes its header")
			assert.Equal(t, []string{"Bearer " + token}, md.Get("authorization"))
		})
	}
	// The backend's own refusal passes through as a gRPC status.
	_, err := c.Unary(ctx, "no oauth token")
	require.Error(t, err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), `testserver: missing "authorization" header`)

	meta, err := authmetarpc1.NewAuthMetadataServiceClient(x.conn).GetOAuth2Metadata(ctx, &authmetapb.OAuth2MetadataRequest{})
	require.NoError(t, err)
	assert.Equal(t, "https://token.example/", meta.GetTokenEndpoint())
	_, err = authmetarpc1.NewAuthMetadataServiceClient(x.conn).GetPublicClientConfig(ctx, &authmetapb.PublicClientAuthConfigRequest{})
	require.NoError(t, err)
	assert.Equal(t, int64(len(echoShapes)+3), x.proxy.Passed())
}

// proxyHeader is a RoundTripper that adds a Proxy-Authorization header.
type proxyHeader struct{ value string }

func (p proxyHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if p.value != "" {
		r.Header.Set("Proxy-Authorization", p.value)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestProxyTokenEndpoint(t *testing.T) {
	x := newProxied(t)
	cfg := &clientcredentials.Config{ClientID: testClientID, ClientSecret: testSecret, TokenURL: x.tokenURL}
	token := func(header string) (*oauth2.Token, error) {
		ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: proxyHeader{header}})
		return cfg.Token(ctx)
	}
	_, err := token("")
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusUnauthorized, re.Response.StatusCode)
	assert.Equal(t, testserver.ProxyAuthenticate, re.Response.Header.Get("Proxy-Authenticate"))
	assert.Zero(t, x.tokens.Requests(), "the token server saw nothing")

	tok, err := token("Bearer " + proxyToken)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
	assert.Empty(t, x.tokens.LastRequest().Header.Get("Proxy-Authorization"))

	x.proxy.Expire(proxyToken)
	_, err = token("Bearer " + proxyToken)
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusUnauthorized, re.Response.StatusCode)
	assert.Contains(t, string(re.Body), "expired proxy token")
	assert.NotContains(t, string(re.Body), proxyToken)

	x.proxy.Allow(proxyToken)
	_, err = token("Bearer " + proxyToken)
	require.NoError(t, err)
}

func TestProxyExpireAndStatus407(t *testing.T) {
	x := newProxied(t, testserver.WithProxyRejectStatus(http.StatusProxyAuthRequired))
	c := testserver.NewEchoClient(x.conn)
	ctx := withProxyToken(t.Context(), proxyToken)
	x.admin.SetRequireAuth(false)
	_, err := c.Unary(ctx, "hi")
	require.NoError(t, err)
	x.proxy.Expire(proxyToken)
	_, err = c.Unary(ctx, "hi")
	requireProxyRefusal(t, err, codes.Unknown, "407")
	assert.NotContains(t, err.Error(), proxyToken)

	resp, err := http.Post(x.tokenURL, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
	assert.Contains(t, string(body), "missing Proxy-Authorization header")
	http.DefaultClient.CloseIdleConnections()
}

func TestProxyTLS(t *testing.T) {
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	p, err := testserver.NewProxy(testserver.WithProxyTLS(ca))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	p.Allow(proxyToken)
	admin, err := testserver.NewAdminServer(testserver.WithTCP())
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	addr, err := p.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(ca.ClientTLSConfig())))
	require.NoError(t, err)
	defer conn.Close()
	c := testserver.NewEchoClient(conn)
	for _, shape := range echoShapes {
		require.NoError(t, shape.call(withProxyToken(t.Context(), proxyToken), t, c), shape.name)
	}
	_, err = c.Unary(t.Context(), "hi")
	requireProxyRefusal(t, err, codes.Unauthenticated, "401")
}

func TestProxyOptionErrors(t *testing.T) {
	_, err := testserver.NewProxy(testserver.WithProxyRejectStatus(http.StatusForbidden))
	assert.ErrorContains(t, err, "neither 401 nor 407")
	_, err = testserver.NewProxy(testserver.WithProxyTLS(nil))
	assert.ErrorContains(t, err, "nil CA")
	p, err := testserver.NewProxy()
	require.NoError(t, err)
	_, err = p.FrontHTTP("not a url", nil)
	assert.Error(t, err)
	p.Close()
	_, err = p.FrontHTTP("http://127.0.0.1:1", nil)
	assert.ErrorContains(t, err, "closed")
}
