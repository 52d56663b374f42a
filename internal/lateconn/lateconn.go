// Package lateconn breaks the circle of an authenticated connection that
// also serves AuthMetadataService: the config store needs the connection,
// the connection needs the interceptors, they need the keeper, which needs
// the store.
package lateconn

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Conn is a grpc.ClientConnInterface that forwards to a connection set
// after it was handed out. Give the store a Conn, build the rest, then Set
// the connection; no call reaches the store before the first call on the
// connection. Calls before Set fail with codes.Unavailable. The zero value
// is ready to use and it is safe for concurrent use.
type Conn struct {
	cc atomic.Pointer[grpc.ClientConn]
}

// Set points l at cc.
func (l *Conn) Set(cc *grpc.ClientConn) { l.cc.Store(cc) }

var errNoConn = status.Error(codes.Unavailable, "grpcauth: the connection is not set yet")

// Invoke forwards to the connection.
func (l *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	cc := l.cc.Load()
	if cc == nil {
		return errNoConn
	}
	return cc.Invoke(ctx, method, args, reply, opts...)
}

// NewStream forwards to the connection.
func (l *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cc := l.cc.Load()
	if cc == nil {
		return nil, errNoConn
	}
	return cc.NewStream(ctx, desc, method, opts...)
}
