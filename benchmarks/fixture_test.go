package benchmarks

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/oauth"
	"google.golang.org/grpc/metadata"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/grpcretry"
	"github.com/flyteauth/grpcauth/internal/lateconn"
	"github.com/flyteauth/grpcauth/internal/retry"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	clientID     = "bench-client"
	clientSecret = "bench-secret-never-printed"
	headerKey    = "authorization"
	payload      = "ping"
	// setupTimeout bounds the calls that set a benchmark or a scenario
	// up; nothing measures it.
	setupTimeout = 30 * time.Second
)

// fixture is one token endpoint (plain HTTP, as the token server may be)
// and two admin servers on bufconn with TLS: admin protects its echo
// service with the token endpoint, open does not.
type fixture struct {
	tokens *testserver.TokenServer
	admin  *testserver.AdminServer
	open   *testserver.AdminServer
}

// newFixture starts the servers and closes them at the end of tb.
func newFixture(tb testing.TB, tokenOpts ...testserver.TokenOption) *fixture {
	tb.Helper()
	ca, err := testserver.NewCA()
	require.NoError(tb, err)
	tokens, err := testserver.NewTokenServer(append([]testserver.TokenOption{testserver.WithClient(clientID, clientSecret)}, tokenOpts...)...)
	require.NoError(tb, err)
	tb.Cleanup(tokens.Close)
	meta := testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()})
	admin, err := testserver.NewAdminServer(testserver.WithAdminTLS(ca), testserver.WithValidator(tokens), meta)
	require.NoError(tb, err)
	tb.Cleanup(admin.Close)
	open, err := testserver.NewAdminServer(testserver.WithAdminTLS(ca), meta)
	require.NoError(tb, err)
	tb.Cleanup(open.Close)
	return &fixture{tokens: tokens, admin: admin, open: open}
}

// dial connects to srv over TLS and closes the connection at the end of
// tb.
func dial(tb testing.TB, srv *testserver.AdminServer, opts ...grpc.DialOption) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(srv.Addr(), append(srv.DialOptions(), opts...)...)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// httpClient returns an HTTP client of its own for token requests, whose
// idle connections are closed at the end of tb.
func httpClient(tb testing.TB) *http.Client {
	tb.Helper()
	c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

// clientCredentials is the generic Go configuration of the client.
func (f *fixture) clientCredentials() *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		TokenURL:     f.tokens.TokenURL(),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

// ours is the module's stack on one connection to the protected server.
type ours struct {
	auth *authenticator.Keeper
	conn *grpc.ClientConn
	echo *testserver.EchoClient
}

// oursConfig holds the optional parts of newOurs.
type oursConfig struct {
	// inner interceptors run after ours, next to the transport, and see
	// every attempt.
	inner    []grpc.UnaryClientInterceptor
	authOpts []authenticator.Option
}

// newOurs builds the module's stack as grpcauth.New does: a Remote store
// on the same connection, both interceptors and the connection's per-RPC
// credentials installed. It fetches no token.
func (f *fixture) newOurs(tb testing.TB, cfg oursConfig) *ours {
	tb.Helper()
	late := new(lateconn.Conn)
	store, err := configstore.NewRemote(late)
	require.NoError(tb, err)
	auth, err := authenticator.NewClientCredentialsAuthenticator(f.admin.Addr(), clientID, clientSecret, store, cfg.authOpts...)
	require.NoError(tb, err)
	opts := grpcretry.NewTokenAuth(auth, retry.NewOptions[interceptor.Option](nil)).DialOptions()
	conn := dial(tb, f.admin, append(opts, grpc.WithChainUnaryInterceptor(cfg.inner...))...)
	late.Set(conn)
	return &ours{auth: auth, conn: conn, echo: testserver.NewEchoClient(conn)}
}

// variant is one way of making the benchmarked calls. Every variant makes
// them the same way, through call, so that they differ only in what they
// are meant to measure.
type variant struct {
	name string
	echo *testserver.EchoClient
	// call returns the context of one call: the given one, or for floor
	// one with the header added.
	call func(context.Context) context.Context
}

func passThrough(ctx context.Context) context.Context { return ctx }

// newVariants builds the four variants on f, each on a connection of its
// own that has made one successful unary call (the TLS handshake is done
// and, for ours and generic, a valid token is held).
func newVariants(tb testing.TB, f *fixture) []variant {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	bare := variant{name: "bare", echo: testserver.NewEchoClient(dial(tb, f.open)), call: passThrough}

	tok, err := f.clientCredentials().Token(context.WithValue(ctx, oauth2.HTTPClient, httpClient(tb)))
	require.NoError(tb, err)
	bearer := "Bearer " + tok.AccessToken
	floor := variant{
		name: "floor",
		echo: testserver.NewEchoClient(dial(tb, f.admin)),
		call: func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, headerKey, bearer)
		},
	}

	o := f.newOurs(tb, oursConfig{})
	require.NoError(tb, o.auth.RefreshCredentials(ctx))
	our := variant{name: "ours", echo: o.echo, call: passThrough}

	// The token source lives as long as the benchmark: its context is
	// only read for the HTTP client.
	src := oauth2.ReuseTokenSource(nil, f.clientCredentials().TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, httpClient(tb))))
	generic := variant{
		name: "generic",
		echo: testserver.NewEchoClient(dial(tb, f.admin, grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: src}))),
		call: passThrough,
	}

	vs := []variant{bare, floor, our, generic}
	for _, v := range vs {
		_, err := v.echo.Unary(v.call(ctx), payload)
		require.NoError(tb, err, "variant %s", v.name)
	}
	return vs
}

// credOK is Credential as the (key, value, ok) of a test that only asks
// whether a credential is at hand.
func credOK(key, value string, err error) (string, string, bool) { return key, value, err == nil }
