package benchmarks

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

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
	key, bearer, ok := credOK(auth.Credential(ctx))
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
// which of the two goes first), so both see the same machine, and reports
// the ratio of their median call times as ours/floor: the figure least
// moved by other processes on a shared machine (a stall hits one call, and
// a median ignores it).
func BenchmarkConnectInterleaved(b *testing.B) {
	variants := newConnectVariants(b)
	floor, ours := variants[1], variants[2]
	ctx := context.Background()
	var tf, to []time.Duration
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
		if odd {
			to = append(to, timed(ours.echo))
			tf = append(tf, timed(floor.echo))
		} else {
			tf = append(tf, timed(floor.echo))
			to = append(to, timed(ours.echo))
		}
		odd = !odd
	}
	if mf := medianDuration(tf); mf > 0 {
		b.ReportMetric(float64(medianDuration(to))/float64(mf), "ours/floor")
	}
}

func medianDuration(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
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

// cannedHTTP answers every Connect-protocol unary request at once with the
// same encoded EchoResponse, without a network: what remains is connect-go's
// client stack and the interceptor.
type cannedHTTP struct{ body []byte }

func (c cannedHTTP) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": []string{"application/proto"}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       req,
	}, nil
}

// BenchmarkConnectHotPath is a unary call through connect-go's client over
// an HTTP client that answers from memory, floor against ours: the cost
// the interceptor adds, free of network and server noise.
func BenchmarkConnectHotPath(b *testing.B) {
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(b, err)
	b.Cleanup(tokens.Close)
	auth, err := authenticator.NewClientCredentialsAuthenticator("https://flyte.example", clientID, clientSecret,
		configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: tokens.TokenURL()}), authenticator.WithHTTPClient(httpClient(b)))
	require.NoError(b, err)
	b.Cleanup(func() { _ = auth.Close() })
	ctx := context.Background()
	require.NoError(b, auth.RefreshCredentials(ctx))
	key, bearer, _ := credOK(auth.Credential(ctx))
	ours, err := connectauth.NewInterceptor(auth, "https://flyte.example")
	require.NoError(b, err)
	floor := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set(key, bearer)
			return next(ctx, req)
		}
	})
	body, err := proto.Marshal(&flyte2pb.EchoResponse{Value: payload})
	require.NoError(b, err)
	hc := cannedHTTP{body: body}
	for _, v := range []struct {
		name string
		ic   connect.Interceptor
	}{{"floor", floor}, {"ours", ours}} {
		echo := flyte2pbconnect.NewEchoServiceClient(hc, "https://flyte.example", connect.WithInterceptors(v.ic))
		b.Run("variant="+v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := connectUnary(ctx, echo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
