package benchmarks

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// connectVariant is one way of making a connect-go call.
type connectVariant struct {
	name string
	srv  *testserver.ConnectServer
	echo flyte2pbconnect.EchoServiceClient
}

// newConnectVariants builds, over TLS and HTTP/2 on loopback with the
// Connect protocol:
//   - bare: no interceptor, to a server that needs no token;
//   - floor: an interceptor that sets a constant, valid bearer header;
//   - ours: connectauth's interceptor on a real client-credentials
//     authenticator holding a valid token.
func newConnectVariants(tb testing.TB) []connectVariant {
	tb.Helper()
	ca, err := testserver.NewCA()
	require.NoError(tb, err)
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(tb, err)
	tb.Cleanup(tokens.Close)
	protected, err := testserver.NewConnectServer(testserver.WithConnectTLS(ca), testserver.WithConnectValidator(tokens))
	require.NoError(tb, err)
	tb.Cleanup(protected.Close)
	open, err := testserver.NewConnectServer(testserver.WithConnectTLS(ca), testserver.WithConnectOpen())
	require.NoError(tb, err)
	tb.Cleanup(open.Close)

	auth, err := authenticator.NewClientCredentialsAuthenticator(protected.URL(), clientID, clientSecret,
		configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: tokens.TokenURL()}), authenticator.WithHTTPClient(httpClient(tb)))
	require.NoError(tb, err)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	require.NoError(tb, auth.RefreshCredentials(ctx))
	key, bearer, ok := auth.FetchGRPCCallAuthMetadata(ctx)
	require.True(tb, ok)

	ours, err := connectauth.NewInterceptor(auth, protected.URL())
	require.NoError(tb, err)
	floor := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set(key, bearer)
			return next(ctx, req)
		}
	})
	client := func(srv *testserver.ConnectServer) *http.Client {
		c := srv.HTTPClient()
		tb.Cleanup(c.CloseIdleConnections)
		return c
	}
	return []connectVariant{
		{"bare", open, flyte2pbconnect.NewEchoServiceClient(client(open), open.URL())},
		{"floor", protected, flyte2pbconnect.NewEchoServiceClient(client(protected), protected.URL(), connect.WithInterceptors(floor))},
		{"ours", protected, flyte2pbconnect.NewEchoServiceClient(client(protected), protected.URL(), connect.WithInterceptors(ours))},
	}
}

func connectUnary(ctx context.Context, echo flyte2pbconnect.EchoServiceClient) error {
	_, err := echo.Echo(ctx, connect.NewRequest(&flyte2pb.EchoRequest{Value: payload}))
	return err
}

// BenchmarkConnectUnary is a unary connect-go echo (Connect protocol,
// TLS, HTTP/2, loopback) per variant, serial and parallel; benchstat
// -col /variant puts the variants side by side.
func BenchmarkConnectUnary(b *testing.B) {
	variants := newConnectVariants(b)
	b.Run("mode=serial", func(b *testing.B) {
		for _, v := range variants {
			b.Run("variant="+v.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					if err := connectUnary(ctx, v.echo); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
	})
	b.Run("mode=parallel", func(b *testing.B) {
		for _, v := range variants {
			b.Run("variant="+v.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				b.SetParallelism(parallelism)
				b.ResetTimer()
				cpu := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := connectUnary(ctx, v.echo); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportCPU(b, cpu)
			})
		}
	})
}

// BenchmarkConnectInterleaved alternates floor and ours call by call (and
// which of the two goes first), so both see the same machine, and reports ours/floor of the summed call
// times as a metric: the figure least moved by a shared machine.
func BenchmarkConnectInterleaved(b *testing.B) {
	variants := newConnectVariants(b)
	floor, ours := variants[1], variants[2]
	ctx := context.Background()
	var tf, to time.Duration
	timed := func(echo flyte2pbconnect.EchoServiceClient) time.Duration {
		start := time.Now()
		if err := connectUnary(ctx, echo); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	b.ReportAllocs()
	odd := false
	for b.Loop() {
		// Which goes first alternates, so neither gains from the order.
		if odd {
			to += timed(ours.echo)
			tf += timed(floor.echo)
		} else {
			tf += timed(floor.echo)
			to += timed(ours.echo)
		}
		odd = !odd
	}
	if tf > 0 {
		b.ReportMetric(float64(to)/float64(tf), "ours/floor")
	}
}

// TestConnectVariants checks that the connect benchmarks measure what they
// say: bare sends no token, floor and ours send one bearer token that the
// protected server accepts, with no rejected attempt.
func TestConnectVariants(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, v := range newConnectVariants(t) {
		t.Run(v.name, func(t *testing.T) {
			require.NoError(t, connectUnary(ctx, v.echo))
			values := v.srv.EchoAuthValues()
			require.NotEmpty(t, values)
			last := values[len(values)-1]
			if v.name == "bare" {
				assert.Empty(t, last)
				return
			}
			assert.Regexp(t, "^Bearer .", last)
			assert.Zero(t, v.srv.Rejected())
		})
	}
}
