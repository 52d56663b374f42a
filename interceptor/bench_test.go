package interceptor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// BenchmarkUnary measures the hot path: a unary echo call over bufconn and
// TLS with a valid token. bare has no interceptor; floor adds a constant
// header with metadata.AppendToOutgoingContext, the least any interceptor
// that sends a token costs; ours is UnaryClientInterceptor. The echo
// service is open, so the server does the same work in all three (floor
// and ours send the same header). ours − floor is what the interceptor
// adds.
func BenchmarkUnary(b *testing.B) {
	e := newEnv(b, envConfig{open: true})
	e.prime(b)
	key, value, ok := credOK(e.auth.Credential(b.Context()))
	require.True(b, ok)
	floor := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(metadata.AppendToOutgoingContext(ctx, key, value), method, req, reply, cc, opts...)
	}

	for _, c := range []struct {
		name string
		opts []grpc.DialOption
	}{
		{"bare", nil},
		{"floor", []grpc.DialOption{grpc.WithUnaryInterceptor(floor)}},
		{"ours", []grpc.DialOption{grpc.WithUnaryInterceptor(interceptor.UnaryClientInterceptor(e.auth))}},
	} {
		conn, err := grpc.NewClient(e.admin.Addr(), append(c.opts, e.admin.DialOptions()...)...)
		require.NoError(b, err)
		b.Cleanup(func() { _ = conn.Close() })
		echo := testserver.NewEchoClient(conn)
		// Connect.
		_, err = echo.Unary(b.Context(), "warm-up")
		require.NoError(b, err)

		b.Run(c.name+"/serial", func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := echo.Unary(ctx, "hi"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := echo.Unary(ctx, "hi"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	if got := e.tokens.Requests(); got != 0 {
		b.Errorf("the hot path made %d token requests", got)
	}
}

// TestHotPathAllocations guards the hot path's allocation budget: with a
// token, the interceptor allocates at most two objects more than a constant
// metadata.AppendToOutgoingContext. Both are called directly with an
// invoker that reads the token as gRPC would (from the outgoing metadata,
// or from the per-RPC credentials on a TLS transport) and sends nothing, so
// that gRPC's own allocations do not blur the count.
func TestHotPathAllocations(t *testing.T) {
	e := newEnv(t, envConfig{open: true})
	e.prime(t)
	key, value, ok := credOK(e.auth.Credential(t.Context()))
	require.True(t, ok)
	floor := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(metadata.AppendToOutgoingContext(ctx, key, value), method, req, reply, cc, opts...)
	}
	ours := interceptor.UnaryClientInterceptor(e.auth)

	ctx := context.Background()
	overTLS := credentials.NewContextWithRequestInfo(ctx, credentials.RequestInfo{
		Method:   testserver.EchoUnaryMethod,
		AuthInfo: credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}},
	})
	audience := []string{"https://" + e.admin.Addr()}
	var sent string
	invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		if v := md.Get(key); len(v) == 1 {
			sent = v[0]
		}
		for _, o := range opts {
			if c := perRPCCreds(o); c != nil {
				m, err := c.GetRequestMetadata(overTLS, audience...)
				if err != nil {
					return err
				}
				if v, ok := m[key]; ok {
					sent = v
				}
			}
		}
		return nil
	}
	measure := func(i grpc.UnaryClientInterceptor) float64 {
		sent = ""
		n := testing.AllocsPerRun(1000, func() {
			_ = i(ctx, testserver.EchoUnaryMethod, nil, nil, nil, invoker)
		})
		assert.Equal(t, value, sent, "the token went out")
		return n
	}
	f, o := measure(floor), measure(ours)
	t.Logf("allocations per call, the invoker's included: floor %.0f, ours %.0f", f, o)
	assert.LessOrEqual(t, o-f, 2.0)
}

// perRPCCreds returns the per-RPC credentials a call option gives the call,
// as gRPC applies them, or nil.
func perRPCCreds(o grpc.CallOption) credentials.PerRPCCredentials {
	switch o := o.(type) {
	case grpc.PerRPCCredsCallOption:
		return o.Creds
	case credentials.PerRPCCredentials: // an option that embeds grpc.PerRPCCredsCallOption
		return o
	}
	return nil
}
