package interceptor_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	clientID     = "flyte-propeller"
	clientSecret = "s3cr3t-never-printed-7f2a"
	// testTimeout bounds every test's calls, so that a bug hangs no test
	// for long. Tests never rely on it expiring.
	testTimeout = 20 * time.Second
)

// envConfig says how to build an env.
type envConfig struct {
	plaintext bool // the admin server serves plaintext instead of TLS
	open      bool // the echo service needs no token
	// headerKey is the metadata key the echo service reads the token from,
	// given to the authenticator with WithHeaderKey, or advertised by the
	// admin server's GetPublicClientConfig when keyFromStore is set.
	headerKey    string
	keyFromStore bool
	// remote makes the authenticator read its configuration through a
	// configstore.Remote on the connection under test, as applications
	// do; else it uses a configstore.Static.
	remote    bool
	tokenOpts []testserver.TokenOption
	authOpts  []authenticator.Option
	opts      []interceptor.Option // for both interceptors
	// unaryInner and streamInner run after the interceptors under test,
	// next to the transport: they see (and may change) every attempt.
	unaryInner  []grpc.UnaryClientInterceptor
	streamInner []grpc.StreamClientInterceptor
}

// env is a token server, a (by default TLS, protected) admin server, a real
// client-credentials authenticator and a connection with both interceptors.
type env struct {
	tokens *testserver.TokenServer
	admin  *testserver.AdminServer
	auth   *authenticator.Keeper
	conn   *grpc.ClientConn
	echo   *testserver.EchoClient
}

func newEnv(tb testing.TB, cfg envConfig) *env {
	tb.Helper()
	tokens, err := testserver.NewTokenServer(append([]testserver.TokenOption{testserver.WithClient(clientID, clientSecret)}, cfg.tokenOpts...)...)
	require.NoError(tb, err)
	tb.Cleanup(tokens.Close)

	adminOpts := []testserver.AdminOption{
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}),
	}
	if !cfg.plaintext {
		ca, err := testserver.NewCA()
		require.NoError(tb, err)
		adminOpts = append(adminOpts, testserver.WithAdminTLS(ca))
	}
	if !cfg.open {
		adminOpts = append(adminOpts, testserver.WithValidator(tokens))
	}
	authOpts := append([]authenticator.Option(nil), cfg.authOpts...)
	if cfg.headerKey != "" {
		adminOpts = append(adminOpts, testserver.WithHeaderKey(cfg.headerKey))
		if cfg.keyFromStore {
			adminOpts = append(adminOpts, testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{AuthorizationMetadataKey: cfg.headerKey}))
		} else {
			authOpts = append(authOpts, authenticator.WithHeaderKey(cfg.headerKey))
		}
	}
	admin, err := testserver.NewAdminServer(adminOpts...)
	require.NoError(tb, err)
	tb.Cleanup(admin.Close)

	var (
		store configstore.ClientConfigStore
		late  = new(lateConn)
	)
	if cfg.remote {
		store, err = configstore.NewRemote(late)
		require.NoError(tb, err)
	} else {
		sc := configstore.ClientConfig{TokenEndpoint: tokens.TokenURL()}
		if cfg.keyFromStore {
			sc.HeaderKey = cfg.headerKey
		}
		store = configstore.NewStatic(sc)
	}
	auth, err := authenticator.NewClientCredentialsAuthenticator(admin.Addr(), clientID, clientSecret, store, authOpts...)
	require.NoError(tb, err)

	conn := dial(tb, admin, auth, cfg)
	late.set(conn)
	return &env{tokens: tokens, admin: admin, auth: auth, conn: conn, echo: testserver.NewEchoClient(conn)}
}

// dial connects to admin through both interceptors built on a, followed
// by cfg's inner interceptors.
func dial(tb testing.TB, admin *testserver.AdminServer, a authenticator.Authenticator, cfg envConfig) *grpc.ClientConn {
	tb.Helper()
	unary := append([]grpc.UnaryClientInterceptor{interceptor.UnaryClientInterceptor(a, cfg.opts...)}, cfg.unaryInner...)
	stream := append([]grpc.StreamClientInterceptor{interceptor.StreamClientInterceptor(a, cfg.opts...)}, cfg.streamInner...)
	opts := append([]grpc.DialOption{
		grpc.WithChainUnaryInterceptor(unary...),
		grpc.WithChainStreamInterceptor(stream...),
	}, admin.DialOptions()...)
	conn, err := grpc.NewClient(admin.Addr(), opts...)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// prime gets a first token, then zeroes the servers' counters.
func (e *env) prime(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, e.auth.RefreshCredentials(tb.Context()))
	e.reset()
}

func (e *env) reset() {
	e.tokens.ResetCounters()
	e.admin.ResetCounters()
}

// token is the "Bearer ..." value the authenticator holds now.
func (e *env) token(tb testing.TB) string {
	tb.Helper()
	_, v, ok := credOK(e.auth.Credential(tb.Context()))
	require.True(tb, ok, "the authenticator holds no token")
	return v
}

// eventually waits, polling, until cond holds; it fails the test if cond
// does not hold within testTimeout.
func eventually(tb testing.TB, cond func() bool, msg string) {
	tb.Helper()
	require.Eventually(tb, cond, testTimeout, time.Millisecond, msg)
}

func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(tb.Context(), testTimeout)
	tb.Cleanup(cancel)
	return ctx
}

// lateConn lets a configstore.Remote use the connection whose interceptors
// need the authenticator that needs the store: one connection for
// everything, as applications have it.
type lateConn struct {
	mu sync.Mutex // guards cc
	cc *grpc.ClientConn
}

func (l *lateConn) set(cc *grpc.ClientConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cc = cc
}

func (l *lateConn) get() *grpc.ClientConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cc
}

func (l *lateConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return l.get().Invoke(ctx, method, args, reply, opts...)
}

func (l *lateConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return l.get().NewStream(ctx, desc, method, opts...)
}

// shape is one of the four call shapes of the echo service.
type shape struct {
	name string
	// call makes one call; it returns what came back joined by ",", also
	// on error (what arrived before it).
	call func(ctx context.Context, c *testserver.EchoClient) (string, error)
	want string
}

var shapes = []shape{
	{"unary", func(ctx context.Context, c *testserver.EchoClient) (string, error) {
		return c.Unary(ctx, "hi")
	}, "hi"},
	{"server-stream", func(ctx context.Context, c *testserver.EchoClient) (string, error) {
		got, err := c.ServerStream(ctx, "hi")
		return strings.Join(got, ","), err
	}, "hi-0,hi-1,hi-2"},
	{"client-stream", func(ctx context.Context, c *testserver.EchoClient) (string, error) {
		return c.ClientStream(ctx, []string{"a", "b", "c"})
	}, "a,b,c"},
	{"bidi", func(ctx context.Context, c *testserver.EchoClient) (string, error) {
		got, err := c.Bidi(ctx, []string{"a", "b", "c"})
		return strings.Join(got, ","), err
	}, "a,b,c"},
}

// gate holds token requests until it is opened, so a test can have many
// calls rejected with the same token before the new token exists.
type gate struct {
	open chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) fault() testserver.Fault {
	return func(_ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
		return false // answer normally
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// counter counts retries reported by interceptor.WithOnRetry.
type counter struct{ n atomic.Int64 }

func (c *counter) option() interceptor.Option {
	return interceptor.WithOnRetry(func(string, codes.Code) { c.n.Add(1) })
}
