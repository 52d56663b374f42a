package benchmarks

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// sink keeps the benchmarked contexts alive, so the compiler cannot drop
// the work that made them; mdSink does the same for per-RPC credentials'
// metadata.
var (
	sink   context.Context
	mdSink map[string]string
)

// overTLS is the context gRPC gives per-RPC credentials on a TLS
// transport, and audience what it passes them.
var (
	overTLS = credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{
		Method:   testserver.EchoUnaryMethod,
		AuthInfo: credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}},
	})
	audience = []string{"https://bufnet/echo"}
)

// readCreds asks the per-RPC credentials among opts for their metadata, as
// gRPC does on a TLS transport.
func readCreds(opts []grpc.CallOption) error {
	for _, o := range opts {
		var c credentials.PerRPCCredentials
		switch o := o.(type) {
		case grpc.PerRPCCredsCallOption:
			c = o.Creds
		case credentials.PerRPCCredentials: // an option embedding grpc.PerRPCCredsCallOption
			c = o
		default:
			continue
		}
		md, err := c.GetRequestMetadata(overTLS, audience...)
		if err != nil {
			return err
		}
		mdSink = md
	}
	return nil
}

// recordInvoker stands in for gRPC's invoker: it keeps the context, and
// with it the metadata the call would send, reads the per-RPC credentials
// as gRPC would, and sends nothing.
func recordInvoker(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, opts ...grpc.CallOption) error {
	sink = ctx
	return readCreds(opts)
}

// fakeStream stands in for the stream gRPC would open: it accepts what is
// sent and answers three messages, then io.EOF.
type fakeStream struct {
	ctx  context.Context
	left int
}

func (s *fakeStream) Header() (metadata.MD, error) { return nil, nil }
func (s *fakeStream) Trailer() metadata.MD         { return nil }
func (s *fakeStream) CloseSend() error             { return nil }
func (s *fakeStream) Context() context.Context     { return s.ctx }
func (s *fakeStream) SendMsg(any) error            { return nil }

func (s *fakeStream) RecvMsg(any) error {
	if s.left == 0 {
		return io.EOF
	}
	s.left--
	return nil
}

// fakeStreamer stands in for gRPC's streamer.
func fakeStreamer(ctx context.Context, _ *grpc.StreamDesc, _ *grpc.ClientConn, _ string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if err := readCreds(opts); err != nil {
		return nil, err
	}
	return &fakeStream{ctx: ctx, left: 3}, nil
}

var serverStreamDesc = &grpc.StreamDesc{StreamName: "ServerStream", ServerStreams: true}

// drainFake sends the request, closes the sending side and receives until
// the stream ends, as a server-streaming call does.
func drainFake(cs grpc.ClientStream, req, reply any) error {
	if err := cs.SendMsg(req); err != nil {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		if err := cs.RecvMsg(reply); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// BenchmarkHotPath isolates what the interceptors add to a call that has a
// valid token, with stand-ins for gRPC that send nothing: ours is the
// interceptor, floor is a constant metadata.AppendToOutgoingContext. The
// stand-ins read the token as gRPC would (ours attaches it as per-RPC
// credentials, asked with a TLS transport's AuthInfo), but not what gRPC
// then does with it (for per-RPC credentials, an audience string and a copy
// of the map): the per-variant benchmarks over real calls show that. For a
// server-streaming call it includes the stream wrapper the interceptor
// returns, through one send, CloseSend and four receives.
func BenchmarkHotPath(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	o := f.newOurs(b, oursConfig{})
	require.NoError(b, o.auth.RefreshCredentials(ctx))
	_, bearer, ok := credOK(o.auth.Credential(ctx))
	require.True(b, ok)

	// The interceptors under test are installed on a connection of their
	// own, which makes real calls first.
	uic := interceptor.UnaryClientInterceptor(o.auth)
	sic := interceptor.StreamClientInterceptor(o.auth)
	conn := dial(b, f.admin, grpc.WithUnaryInterceptor(uic), grpc.WithStreamInterceptor(sic))
	echo := testserver.NewEchoClient(conn)
	require.NoError(b, unaryCall(ctx, echo))
	require.NoError(b, streamCall(ctx, echo))

	req, reply := wrapperspb.String(payload), new(wrapperspb.StringValue)
	type hotVariant struct {
		name string
		call func(context.Context) error
	}
	calls := []struct {
		name     string
		variants []hotVariant
	}{
		{"unary", []hotVariant{
			{"floor", func(ctx context.Context) error {
				return recordInvoker(metadata.AppendToOutgoingContext(ctx, headerKey, bearer), testserver.EchoUnaryMethod, req, reply, conn)
			}},
			{"ours", func(ctx context.Context) error {
				return uic(ctx, testserver.EchoUnaryMethod, req, reply, conn, recordInvoker)
			}},
		}},
		{"server-stream", []hotVariant{
			{"floor", func(ctx context.Context) error {
				cs, err := fakeStreamer(metadata.AppendToOutgoingContext(ctx, headerKey, bearer), serverStreamDesc, conn, testserver.EchoServerStreamMethod)
				if err != nil {
					return err
				}
				return drainFake(cs, req, reply)
			}},
			{"ours", func(ctx context.Context) error {
				cs, err := sic(ctx, serverStreamDesc, conn, testserver.EchoServerStreamMethod, fakeStreamer)
				if err != nil {
					return err
				}
				return drainFake(cs, req, reply)
			}},
		}},
	}
	for _, c := range calls {
		b.Run("call="+c.name, func(b *testing.B) {
			b.Run("mode=serial", func(b *testing.B) {
				for _, v := range c.variants {
					b.Run("variant="+v.name, func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							if err := v.call(ctx); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			})
			b.Run("mode=parallel", func(b *testing.B) {
				for _, v := range c.variants {
					b.Run("variant="+v.name, func(b *testing.B) {
						b.ReportAllocs()
						b.SetParallelism(parallelism)
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								if err := v.call(ctx); err != nil {
									b.Error(err)
									return
								}
							}
						})
					})
				}
			})
		})
	}
}
