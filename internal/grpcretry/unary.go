package grpcretry

import (
	"context"

	"google.golang.org/grpc"
)

// Unary is the unary interceptor: it runs one unary call: attach, send, and on a refusal get a new
// credential and send once more.
func (x *Auth) Unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
	if x.o.Skip[method] {
		return invoker(ctx, method, req, reply, cc, callOpts...)
	}
	for retried := false; ; retried = true {
		aopts, c, err := x.attach(ctx, callOpts, nil)
		if err != nil {
			return err
		}
		err = invoker(ctx, method, req, reply, cc, aopts...)
		if err == nil {
			x.p.Accepted(c)
			return nil
		}
		if err = x.decide(ctx, method, c, err, retried); err != nil {
			return err
		}
	}
}
