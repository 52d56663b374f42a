// Package connectmeta carries the AuthMetadataService RPCs of a connect-go
// client: Flyte 2's service over the Connect protocol (unary, over any HTTP
// version, as flyte-sdk asks it), so that an ingress that speaks only
// HTTP/1.1 does not stop the lookup; every other method, Flyte 1's service
// included, over the grpc-go connection it wraps.
package connectmeta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/flyteauth/grpcauth/internal/authmetarpc2"
)

// Via is set by package grpcauth: it returns the grpcauth.Option (as any)
// that gives the config store wrap(conn) in place of the connection.
var Via func(wrap func(grpc.ClientConnInterface) grpc.ClientConnInterface) any

// maxAnswer bounds an answer: metadata is a few hundred bytes.
const maxAnswer = 1 << 20

// Conn is a grpc.ClientConnInterface that sends Flyte 2's AuthMetadataService
// RPCs over the Connect protocol through the HTTP client given to Set, and
// everything else to Next. Errors are gRPC status errors with the code the
// server answered; an answer of HTTP 415 (a gRPC-only server, such as
// FlyteAdmin, refusing the Connect protocol's content type) counts as
// Unimplemented: the server does not serve the service that way. Set Next
// before use; it is safe for concurrent use.
type Conn struct {
	Next grpc.ClientConnInterface
	to   atomic.Pointer[target]
}

type target struct {
	client  *http.Client
	baseURL string
}

// Set gives c the HTTP client and base URL ("https://host:port") of the
// Connect protocol requests.
func (c *Conn) Set(client *http.Client, baseURL string) {
	c.to.Store(&target{client: client, baseURL: strings.TrimSuffix(baseURL, "/")})
}

var errNotSet = status.Error(codes.Unavailable, "grpcauth: the HTTP client of the metadata requests is not set yet")

// Invoke sends a Flyte 2 AuthMetadataService RPC over the Connect
// protocol, and any other method to Next.
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if !strings.HasPrefix(method, "/"+authmetarpc2.ServiceName+"/") {
		return c.Next.Invoke(ctx, method, args, reply, opts...)
	}
	t := c.to.Load()
	if t == nil {
		return errNotSet
	}
	in, ok := args.(proto.Message)
	out, ok2 := reply.(proto.Message)
	if !ok || !ok2 {
		return status.Errorf(codes.Internal, "grpcauth: %s: %T and %T are not protobuf messages", method, args, reply)
	}
	seen := new(atomic.Int32) // the HTTP status of the answer
	hc := &http.Client{Transport: statusOf{base: t.client.Transport, seen: seen}, CheckRedirect: t.client.CheckRedirect}
	client := connect.NewClient[message, message](hc, t.baseURL+method, connect.WithCodec(codec{reply: out}), connect.WithReadMaxBytes(maxAnswer))
	_, err := client.CallUnary(ctx, connect.NewRequest(&message{m: in}))
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return status.Error(codes.Unknown, err.Error())
	}
	code := codes.Code(ce.Code())
	if seen.Load() == http.StatusUnsupportedMediaType {
		code = codes.Unimplemented
	}
	return status.Error(code, ce.Message())
}

// NewStream goes to Next: the metadata RPCs are unary.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.Next.NewStream(ctx, desc, method, opts...)
}

// statusOf notes the HTTP status of the answer.
type statusOf struct {
	base http.RoundTripper
	seen *atomic.Int32
}

func (s statusOf) RoundTrip(r *http.Request) (*http.Response, error) {
	base := s.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if resp != nil {
		s.seen.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// message carries a request of any type through connect-go's typed client.
type message struct{ m proto.Message }

// codec is connect-go's binary protobuf codec for one call: it writes the
// request's message and reads the answer into reply.
type codec struct{ reply proto.Message }

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) ([]byte, error) {
	m, ok := v.(*message)
	if !ok {
		return nil, fmt.Errorf("grpcauth: cannot marshal %T", v)
	}
	return proto.Marshal(m.m)
}

func (c codec) Unmarshal(data []byte, _ any) error { return proto.Unmarshal(data, c.reply) }
