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
		return func(context.Context, string, any, any, *grpc.ClientConn, grpc.UnaryInvoker, ...grpc.CallOption) error {
			return missingAuthenticator
		}
	}
	x := newAuth(a, opts)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		if x.o.skip[method] {
			return invoker(ctx, method, req, reply, cc, callOpts...)
		}
		for retried := false; ; retried = true {
			aopts, at, err := x.attach(ctx, callOpts, nil)
			if err != nil {
				return err
			}
			err = invoker(ctx, method, req, reply, cc, aopts...)
			if err == nil {
				x.accepted(at)
				return nil
			}
			if retry, err := x.afterAttempt(ctx, method, at, err, retried); !retry {
				return err
			}
		}
	}
}
