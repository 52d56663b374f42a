package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// EchoServiceName is the full name of the echo service served by
// AdminServer. Being a constant, it is safe for concurrent use.
const EchoServiceName = "grpcauth.testing.Echo"

// Full method paths of the echo service. Being constants, they are safe for
// concurrent use.
const (
	// EchoUnaryMethod is the path of Unary, which returns its request;
	// safe for concurrent use.
	EchoUnaryMethod = "/" + EchoServiceName + "/Unary"
	// EchoServerStreamMethod is the path of ServerStream, which answers
	// request v with "v-0", "v-1", "v-2"; safe for concurrent use.
	EchoServerStreamMethod = "/" + EchoServiceName + "/ServerStream"
	// EchoClientStreamMethod is the path of ClientStream, which answers
	// with the received values joined by ","; safe for concurrent use.
	EchoClientStreamMethod = "/" + EchoServiceName + "/ClientStream"
	// EchoBidiMethod is the path of Bidi, which echoes each message as it
	// arrives; safe for concurrent use.
	EchoBidiMethod = "/" + EchoServiceName + "/Bidi"
)

// serverStreamReplies is how many responses ServerStream sends.
const serverStreamReplies = 3

var (
	serverStreamDesc = grpc.StreamDesc{StreamName: "ServerStream", ServerStreams: true}
	clientStreamDesc = grpc.StreamDesc{StreamName: "ClientStream", ClientStreams: true}
	bidiStreamDesc   = grpc.StreamDesc{StreamName: "Bidi", ServerStreams: true, ClientStreams: true}
)

// echoServer is what the echo service descriptor dispatches to.
type echoServer interface {
	unary(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	serverStream(in *wrapperspb.StringValue, stream grpc.ServerStream) error
	clientStream(stream grpc.ServerStream) error
	bidi(stream grpc.ServerStream) error
}

var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: EchoServiceName,
	HandlerType: (*echoServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Unary", Handler: echoUnaryHandler}},
	Streams: []grpc.StreamDesc{
		withHandler(serverStreamDesc, echoServerStreamHandler),
		withHandler(clientStreamDesc, func(srv any, stream grpc.ServerStream) error {
			return srv.(echoServer).clientStream(stream)
		}),
		withHandler(bidiStreamDesc, func(srv any, stream grpc.ServerStream) error {
			return srv.(echoServer).bidi(stream)
		}),
	},
	Metadata: "grpcauth/testing/echo.proto",
}

func withHandler(d grpc.StreamDesc, h grpc.StreamHandler) grpc.StreamDesc {
	d.Handler = h
	return d
}

func echoUnaryHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(echoServer)
	if interceptor == nil {
		return s.unary(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: EchoUnaryMethod}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.unary(ctx, req.(*wrapperspb.StringValue))
	})
}

func echoServerStreamHandler(srv any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(echoServer).serverStream(in, stream)
}

// EchoClient calls the echo service of an AdminServer. It is safe for
// concurrent use when its connection is.
type EchoClient struct {
	cc grpc.ClientConnInterface
}

// NewEchoClient returns a client of the echo service over cc. It is safe
// for concurrent use.
func NewEchoClient(cc grpc.ClientConnInterface) *EchoClient {
	return &EchoClient{cc: cc}
}

// Unary sends s and returns the echoed value. It is safe for concurrent
// use.
func (c *EchoClient) Unary(ctx context.Context, s string, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := c.cc.Invoke(ctx, EchoUnaryMethod, wrapperspb.String(s), out, opts...); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

// ServerStream sends s and collects every response until the stream ends.
// On error it returns the values received before it. It is safe for
// concurrent use.
func (c *EchoClient) ServerStream(ctx context.Context, s string, opts ...grpc.CallOption) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.OpenServerStream(ctx, s, opts...)
	if err != nil {
		return nil, err
	}
	return RecvAll(stream)
}

// ClientStream sends each value, closes the sending side and returns the
// server's answer: the values joined by ",". It is safe for concurrent use.
func (c *EchoClient) ClientStream(ctx context.Context, values []string, opts ...grpc.CallOption) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.OpenClientStream(ctx, opts...)
	if err != nil {
		return "", err
	}
	for _, v := range values {
		if err := stream.SendMsg(wrapperspb.String(v)); err != nil {
			if errors.Is(err, io.EOF) {
				break // the stream ended; RecvMsg returns its status
			}
			return "", err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return "", err
	}
	out := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(out); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

// Bidi sends each value in turn and waits for its echo before sending the
// next, then closes the sending side and reads until the stream ends. On
// error it returns the values received before it. It is safe for
// concurrent use.
func (c *EchoClient) Bidi(ctx context.Context, values []string, opts ...grpc.CallOption) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.OpenBidi(ctx, opts...)
	if err != nil {
		return nil, err
	}
	var got []string
	for _, v := range values {
		if err := stream.SendMsg(wrapperspb.String(v)); err != nil {
			if errors.Is(err, io.EOF) {
				return drain(stream, got) // the stream ended; get its status
			}
			return got, err
		}
		out := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(out); err != nil {
			if errors.Is(err, io.EOF) {
				return got, fmt.Errorf("testserver: bidi stream ended before the echo of message %d", len(got))
			}
			return got, err
		}
		got = append(got, out.GetValue())
	}
	if err := stream.CloseSend(); err != nil {
		return got, err
	}
	return drain(stream, got)
}

// OpenServerStream starts a ServerStream call with request s and closes the
// sending side; the caller reads with RecvMsg(*wrapperspb.StringValue) and
// must read until an error or cancel ctx. It is safe for concurrent use.
func (c *EchoClient) OpenServerStream(ctx context.Context, s string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	stream, err := c.cc.NewStream(ctx, &serverStreamDesc, EchoServerStreamMethod, opts...)
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(wrapperspb.String(s)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	return stream, nil
}

// OpenClientStream starts a ClientStream call; the caller sends
// *wrapperspb.StringValue messages, calls CloseSend and reads the single
// answer with RecvMsg. It is safe for concurrent use.
func (c *EchoClient) OpenClientStream(ctx context.Context, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &clientStreamDesc, EchoClientStreamMethod, opts...)
}

// OpenBidi starts a Bidi call; the caller sends and receives
// *wrapperspb.StringValue messages. It is safe for concurrent use.
func (c *EchoClient) OpenBidi(ctx context.Context, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &bidiStreamDesc, EchoBidiMethod, opts...)
}

// RecvAll receives the responses of an Echo stream until it ends and
// returns their values; io.EOF is a clean end and gives a nil error. It is
// for streams opened with the Open methods of EchoClient.
func RecvAll(stream grpc.ClientStream) ([]string, error) { return drain(stream, nil) }

// drain reads responses into got until the stream ends. io.EOF is a clean
// end and returns a nil error.
func drain(stream grpc.ClientStream, got []string) ([]string, error) {
	for {
		out := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(out); err != nil {
			if errors.Is(err, io.EOF) {
				return got, nil
			}
			return got, err
		}
		got = append(got, out.GetValue())
	}
}

// The server side, on AdminServer.

func (s *AdminServer) unary(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	if err := s.admit(ctx); err != nil {
		return nil, err
	}
	return wrapperspb.String(in.GetValue()), nil
}

func (s *AdminServer) serverStream(in *wrapperspb.StringValue, stream grpc.ServerStream) error {
	if err := s.admit(stream.Context()); err != nil {
		return err
	}
	failAfter := s.failAfter.Load()
	for i := range serverStreamReplies {
		if err := stream.SendMsg(wrapperspb.String(fmt.Sprintf("%s-%d", in.GetValue(), i))); err != nil {
			return err
		}
		if failAfter > 0 && int64(i+1) == failAfter {
			return s.reject("stream failed after %d responses (SetStreamFailAfter)", failAfter)
		}
	}
	return nil
}

func (s *AdminServer) clientStream(stream grpc.ServerStream) error {
	if err := s.admit(stream.Context()); err != nil {
		return err
	}
	var values []string
	for {
		in := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(in); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		values = append(values, in.GetValue())
	}
	return stream.SendMsg(wrapperspb.String(strings.Join(values, ",")))
}

func (s *AdminServer) bidi(stream grpc.ServerStream) error {
	ctx := stream.Context()
	if err := s.admit(ctx); err != nil {
		return err
	}
	failAfter := s.failAfter.Load()
	for sent := int64(0); ; sent++ {
		in := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(in); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if sent > 0 {
			if err := s.check(ctx); err != nil {
				return err
			}
		}
		if err := stream.SendMsg(wrapperspb.String(in.GetValue())); err != nil {
			return err
		}
		if failAfter > 0 && sent+1 == failAfter {
			return s.reject("stream failed after %d responses (SetStreamFailAfter)", failAfter)
		}
	}
}
