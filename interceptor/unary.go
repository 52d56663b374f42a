package interceptor

import (
	"context"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
)

// UnaryClientInterceptor returns an interceptor that attaches a's
// credentials to every unary call and, when the call fails with a refresh
// code, refreshes them and sends the call again once. It is safe for
// concurrent use. With a nil a (or an a holding a nil pointer), every call
// fails with codes.Internal.
func UnaryClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.UnaryClientInterceptor {
	if nilcheck.Nil(a) {
		return failUnary
	}
	return newTokenAuth(a, opts).unary
}

// unary runs one unary call: attach, send, and on a refusal get a new
// credential and send once more.
func (x *auth) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
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

func failUnary(context.Context, string, any, any, *grpc.ClientConn, grpc.UnaryInvoker, ...grpc.CallOption) error {
	return missingAuthenticator
}
