package connectauth_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	clientID     = "flyte2-client"
	clientSecret = "s3cr3t-never-printed-2c9e"
	testTimeout  = 30 * time.Second
)

// protocols are connect-go's three wire protocols, as client options.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// rig is a token server, a protected connect-go Flyte 2 fake (TLS by
// default) that accepts the token server's tokens, and a real
// client-credentials authenticator.
type rig struct {
	tokens *testserver.TokenServer
	srv    *testserver.ConnectServer
	auth   *authenticator.Keeper
	http   *http.Client
}

type rigConfig struct {
	plaintext bool
	tokenOpts []testserver.TokenOption
	authOpts  []authenticator.Option
}

func newRig(t testing.TB, cfg rigConfig) *rig {
	t.Helper()
	tokens, err := testserver.NewTokenServer(append([]testserver.TokenOption{testserver.WithClient(clientID, clientSecret)}, cfg.tokenOpts...)...)
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	opts := []testserver.ConnectOption{testserver.WithConnectValidator(tokens)}
	if !cfg.plaintext {
		ca, err := testserver.NewCA()
		require.NoError(t, err)
		opts = append(opts, testserver.WithConnectTLS(ca))
	}
	srv, err := testserver.NewConnectServer(opts...)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: tokens.TokenURL()})
	auth, err := authenticator.NewClientCredentialsAuthenticator(srv.URL(), clientID, clientSecret, store, cfg.authOpts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = auth.Close() })
	hc := srv.HTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	return &rig{tokens: tokens, srv: srv, auth: auth, http: hc}
}

// echo returns an echo client through an interceptor built on r.auth.
func (r *rig) echo(t testing.TB, proto []connect.ClientOption, opts ...interceptor.Option) flyte2pbconnect.EchoServiceClient {
	t.Helper()
	ic, err := connectauth.NewInterceptor(r.auth, r.srv.URL(), opts...)
	require.NoError(t, err)
	return flyte2pbconnect.NewEchoServiceClient(r.http, r.srv.URL(), append([]connect.ClientOption{connect.WithInterceptors(ic)}, proto...)...)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

func req(v string) *connect.Request[flyte2pb.EchoRequest] {
	return connect.NewRequest(&flyte2pb.EchoRequest{Value: v})
}

// redirectDialer makes an HTTP client reach addr whatever host a URL
// names, so a test can use a base URL whose host is not loopback.
func redirectDialer(addr string) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr.Protocols = p
	return &http.Client{Transport: tr}
}

// stormSize is how many concurrent calls a storm test makes: 1,000 over
// connect-go's default protocol, fewer over the other two, to keep the
// suite's time on a shared machine under the race detector.
func stormSize(protocol string) int {
	if protocol == "connect" {
		return 1000
	}
	return 250
}

// stormTimeout bounds a storm; the race detector on a busy machine makes
// 2,000 HTTP/2 calls take a while. Tests never rely on it expiring.
const stormTimeout = 3 * time.Minute

// epEcho is the echo service through c, in protocol proto (Connect by
// default).
func epEcho(c *connectauth.Client, proto ...connect.ClientOption) flyte2pbconnect.EchoServiceClient {
	return flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, append(c.Options, proto...)...)
}
