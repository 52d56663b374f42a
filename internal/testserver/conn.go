package testserver

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ConnServiceName is the full name of the service ConnServer serves, for
// connection-level behaviour: large answers and transient failures. Being
// a constant, it is safe for concurrent use.
const ConnServiceName = "grpcauth.testing.Conn"

// Full method paths of the conn service. Being constants, they are safe
// for concurrent use.
const (
	// ConnPayloadMethod answers an Int64Value n with a BytesValue of n
	// bytes.
	ConnPayloadMethod = "/" + ConnServiceName + "/Payload"
	// ConnFlakyMethod echoes a StringValue, after failing as many
	// attempts as FailNext said.
	ConnFlakyMethod = "/" + ConnServiceName + "/Flaky"
)

// maxPayload bounds what Payload will build, so a test cannot exhaust
// memory by mistake.
const maxPayload = 256 << 20

// ConnServer is a plaintext gRPC server on loopback TCP without
// authentication, for tests of the connection itself: the receive limit,
// gRPC's retry policy, the user-agent. Its methods are safe for concurrent
// use.
type ConnServer struct {
	srv    *grpc.Server
	addr   string
	served chan struct{}

	attempts atomic.Int64

	mu        sync.Mutex // guards failLeft, failCode, userAgent
	failLeft  int
	failCode  codes.Code
	userAgent string
}

// NewConnServer starts a ConnServer on 127.0.0.1 on a free port. It is
// safe for concurrent use.
func NewConnServer() (*ConnServer, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testserver: listen: %w", err)
	}
	s := &ConnServer{
		srv:    grpc.NewServer(grpc.MaxSendMsgSize(maxPayload + 1<<10)),
		addr:   lis.Addr().String(),
		served: make(chan struct{}),
	}
	s.srv.RegisterService(&connServiceDesc, s)
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(lis)
	}()
	return s, nil
}

// Addr is the server's "127.0.0.1:port". It is safe for concurrent use.
func (s *ConnServer) Addr() string { return s.addr }

// Close stops the server and ends every call. It is safe for concurrent
// use.
func (s *ConnServer) Close() {
	s.srv.Stop()
	<-s.served
}

// FailNext makes the next n attempts of Flaky fail with code. It is safe
// for concurrent use.
func (s *ConnServer) FailNext(n int, code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLeft, s.failCode = n, code
}

// Attempts is how many attempts of any method reached the server. It is
// safe for concurrent use.
func (s *ConnServer) Attempts() int64 { return s.attempts.Load() }

// ResetAttempts sets the attempt counter to zero. It is safe for
// concurrent use.
func (s *ConnServer) ResetAttempts() { s.attempts.Store(0) }

// UserAgent is the user-agent header of the last attempt. It is safe for
// concurrent use.
func (s *ConnServer) UserAgent() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userAgent
}

// begin counts an attempt and records its user-agent.
func (s *ConnServer) begin(ctx context.Context) {
	s.attempts.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ua := md.Get("user-agent"); len(ua) > 0 {
		s.userAgent = ua[0]
	}
}

func (s *ConnServer) payload(ctx context.Context, in *wrapperspb.Int64Value) (*wrapperspb.BytesValue, error) {
	s.begin(ctx)
	n := in.GetValue()
	if n < 0 || n > maxPayload {
		return nil, status.Errorf(codes.InvalidArgument, "testserver: payload of %d bytes: want 0 to %d", n, maxPayload)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return wrapperspb.Bytes(b), nil
}

func (s *ConnServer) flaky(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	s.begin(ctx)
	s.mu.Lock()
	fail, code := s.failLeft > 0, s.failCode
	if fail {
		s.failLeft--
	}
	s.mu.Unlock()
	if fail {
		return nil, status.Errorf(code, "testserver: failing as told (FailNext)")
	}
	return in, nil
}

// connHandler is what connServiceDesc dispatches to.
type connHandler interface {
	payload(context.Context, *wrapperspb.Int64Value) (*wrapperspb.BytesValue, error)
	flaky(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

var connServiceDesc = grpc.ServiceDesc{
	ServiceName: ConnServiceName,
	HandlerType: (*connHandler)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Payload", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.Int64Value)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(connHandler).payload(ctx, in)
		}},
		{MethodName: "Flaky", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(connHandler).flaky(ctx, in)
		}},
	},
	Metadata: "grpcauth/testing/conn.proto",
}

// Payload asks srv's Payload method over cc for n bytes. It is safe for
// concurrent use.
func Payload(ctx context.Context, cc grpc.ClientConnInterface, n int64, opts ...grpc.CallOption) ([]byte, error) {
	out := new(wrapperspb.BytesValue)
	if err := cc.Invoke(ctx, ConnPayloadMethod, wrapperspb.Int64(n), out, opts...); err != nil {
		return nil, err
	}
	return out.GetValue(), nil
}

// Flaky calls the Flaky method over cc with s and returns the echo. It is
// safe for concurrent use.
func Flaky(ctx context.Context, cc grpc.ClientConnInterface, s string, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := cc.Invoke(ctx, ConnFlakyMethod, wrapperspb.String(s), out, opts...); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}
