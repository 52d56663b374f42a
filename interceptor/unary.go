package interceptor

import (
	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/grpcretry"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
	"github.com/flyteauth/grpcauth/internal/retry"
)

// UnaryClientInterceptor returns an interceptor that attaches a's
// credentials to every unary call and, when the call fails with a refresh
// code, refreshes them and sends the call again once. It is safe for
// concurrent use. With a nil a (or an a holding a nil pointer), every call
// fails with codes.Internal.
func UnaryClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.UnaryClientInterceptor {
	if nilcheck.Nil(a) {
		return grpcretry.FailUnary
	}
	return grpcretry.NewTokenAuth(a, retry.NewOptions(opts)).Unary
}

// StreamClientInterceptor returns an interceptor that attaches a's
// credentials to every stream and, when the stream fails with a refresh code
// before any response message arrived, refreshes them, opens the stream
// again and replays what the caller had sent. It is safe for concurrent use.
// With a nil a (or an a holding a nil pointer), every stream fails with
// codes.Internal.
func StreamClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.StreamClientInterceptor {
	if nilcheck.Nil(a) {
		return grpcretry.FailStream
	}
	return grpcretry.NewTokenAuth(a, retry.NewOptions(opts)).Stream
}

// RefreshError is returned by a call that the server rejected and whose
// credentials could not be refreshed, by these interceptors and by
// connectauth's. status.Code(err) (connect.CodeOf) reports its Code, the
// code of the rejected call; its Message is the rejected call's message;
// its Err, which errors.As reaches, is the cause of the refresh failure,
// such as an *authenticator.TokenError. When the caller's own context
// ended while the call waited for the refresh, the call's error reports
// that context's code (codes.DeadlineExceeded or codes.Canceled) instead,
// and errors.As still reaches the RefreshError.
type RefreshError = grpcretry.RefreshError
