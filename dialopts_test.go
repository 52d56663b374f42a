package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// newConnServer starts a testserver.ConnServer for the test.
func newConnServer(t *testing.T) *testserver.ConnServer {
	t.Helper()
	srv, err := testserver.NewConnServer()
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return srv
}

// plainConn dials srv with NewClient and cfg (Endpoint and Insecure set
// here), closing the connection at the end of the test.
func plainConn(t *testing.T, srv *testserver.ConnServer, cfg grpcauth.Config, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cfg.Endpoint, cfg.Insecure = srv.Addr(), true
	cc, err := grpcauth.NewClient(cfg, grpcauth.WithDialOptions(opts...))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// A response of 25 MiB, past gRPC's 4 MiB and flytekit's 20 MiB, passes
// with the defaults.
func TestNewClientReceivesLargeResponses(t *testing.T) {
	srv := newConnServer(t)
	const size = 25 << 20

	got, err := testserver.Payload(callCtx(t), plainConn(t, srv, grpcauth.Config{}), size)
	require.NoError(t, err)
	require.Len(t, got, size)

	t.Run("gRPC's default refuses it", func(t *testing.T) {
		cc, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer cc.Close()
		_, err = testserver.Payload(callCtx(t), cc, size)
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	})
	t.Run("maxMessageSizeBytes lowers it", func(t *testing.T) {
		_, err := testserver.Payload(callCtx(t), plainConn(t, srv, grpcauth.Config{MaxMessageSizeBytes: 1 << 20}), 2<<20)
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	})
	t.Run("the caller's options win", func(t *testing.T) {
		cc := plainConn(t, srv, grpcauth.Config{}, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<20)))
		_, err := testserver.Payload(callCtx(t), cc, 2<<20)
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	})
}

func TestNewClientRetriesUnavailable(t *testing.T) {
	tests := []struct {
		name         string
		cfg          grpcauth.Config
		fail         int
		code         codes.Code
		wantCode     codes.Code
		wantAttempts int64
	}{
		{name: "default: 4 retries", fail: 4, code: codes.Unavailable, wantCode: codes.OK, wantAttempts: 5},
		{name: "default: a fifth failure is returned", fail: 5, code: codes.Unavailable, wantCode: codes.Unavailable, wantAttempts: 5},
		{name: "maxRetries 1", cfg: grpcauth.Config{MaxRetries: 1}, fail: 3, code: codes.Unavailable, wantCode: codes.Unavailable, wantAttempts: 2},
		{name: "maxRetries 6 passes gRPC's cap of 5 attempts", cfg: grpcauth.Config{MaxRetries: 6}, fail: 6, code: codes.Unavailable, wantCode: codes.OK, wantAttempts: 7},
		{name: "no retries", cfg: grpcauth.Config{MaxRetries: -1}, fail: 1, code: codes.Unavailable, wantCode: codes.Unavailable, wantAttempts: 1},
		{name: "Unauthenticated is never retried by gRPC", fail: 3, code: codes.Unauthenticated, wantCode: codes.Unauthenticated, wantAttempts: 1},
		{name: "nor any code but Unavailable", fail: 3, code: codes.Internal, wantCode: codes.Internal, wantAttempts: 1},
		{
			name: "a defaultServiceConfig replaces the retry policy",
			cfg:  grpcauth.Config{DefaultServiceConfig: `{"loadBalancingConfig": [{"round_robin": {}}]}`},
			fail: 1, code: codes.Unavailable, wantCode: codes.Unavailable, wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newConnServer(t)
			cfg := tt.cfg
			cfg.MaxBackoffDelay = 1 // keep the test quick: backoff up to 1ns
			cc := plainConn(t, srv, cfg)
			srv.FailNext(tt.fail, tt.code)
			got, err := testserver.Flaky(callCtx(t), cc, "hello")
			assert.Equal(t, tt.wantCode, status.Code(err), "%v", err)
			if err == nil {
				assert.Equal(t, "hello", got)
			}
			assert.Equal(t, tt.wantAttempts, srv.Attempts())
		})
	}
}

// The interceptor owns Unauthenticated: with a server that rejects every
// token, a call makes exactly two attempts, the original and the
// interceptor's one retry with a fresh token; gRPC's retry policy adds
// none.
func TestNewClientUnauthenticatedRetriedOnceByTheInterceptor(t *testing.T) {
	f := newFixture(t, fixtureOptions{plaintext: true})
	f.admin.SetRejectAll(true)
	cfg := f.config()
	cfg.CACertFilePath, cfg.Insecure = "", true
	c := dial(t, cfg)

	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	assert.Equal(t, int64(2), f.admin.EchoCalls())
	assert.Equal(t, int64(2), f.admin.Rejected())
}

func TestNewClientUserAgent(t *testing.T) {
	srv := newConnServer(t)
	_, err := testserver.Flaky(callCtx(t), plainConn(t, srv, grpcauth.Config{}), "x")
	require.NoError(t, err)
	ua := srv.UserAgent()
	assert.Regexp(t, `^grpcauth/[^ ]+ grpc-go/`, ua)
}

func TestDialOptionsErrors(t *testing.T) {
	tests := []struct {
		cfg  grpcauth.Config
		want string
	}{
		{grpcauth.Config{DefaultServiceConfig: `{"methodConfig": [`}, "defaultServiceConfig is not a JSON object"},
		{grpcauth.Config{DefaultServiceConfig: `[]`}, "defaultServiceConfig is not a JSON object"},
		{grpcauth.Config{MaxMessageSizeBytes: -1}, "maxMessageSizeBytes is -1"},
		{grpcauth.Config{MaxBackoffDelay: -1}, "maxBackoffDelay is -1ns"},
	}
	for _, tt := range tests {
		tt.cfg.Endpoint = "127.0.0.1:1"
		_, err := grpcauth.NewClient(tt.cfg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}

	// A JSON object that gRPC cannot use fails in New, naming the target.
	_, err := grpcauth.NewClient(grpcauth.Config{Endpoint: "127.0.0.1:1", DefaultServiceConfig: `{"methodConfig": [{"name": [{"method": "x"}]}]}`})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dialing 127.0.0.1:1")
}

// BenchmarkDefaultRetryPolicy measures what gRPC's retry policy (on by
// default) costs a unary call on loopback, against the same connection
// without it (maxRetries 0 in the file, -1 in Go).
func BenchmarkDefaultRetryPolicy(b *testing.B) {
	srv, err := testserver.NewConnServer()
	require.NoError(b, err)
	defer srv.Close()
	for _, bc := range []struct {
		name    string
		retries int
	}{{"retry policy", 0}, {"no retry policy", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			cc, err := grpcauth.NewClient(grpcauth.Config{Endpoint: srv.Addr(), Insecure: true, MaxRetries: bc.retries})
			require.NoError(b, err)
			defer cc.Close()
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := testserver.Flaky(ctx, cc, "x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
