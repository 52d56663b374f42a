package connectauth

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/flyteauth/grpcauth/internal/retry"
)

// RefreshError is the cause, inside the *connect.Error a call returns, of a
// call that the server rejected and whose credentials could not be
// refreshed. connect.CodeOf(err) reports Code, the code of the rejected
// call; errors.As reaches the RefreshError and, through it, the cause of
// the refresh failure, such as an *authenticator.TokenError.
type RefreshError struct {
	// Code is the code of the rejected call.
	Code connect.Code
	// Message is the message of the rejected call.
	Message string
	// Err is why the refresh failed.
	Err error
}

// Error says why the refresh failed, then what the server had answered.
func (e *RefreshError) Error() string {
	return fmt.Sprintf("connectauth: refreshing credentials failed: %v (the server had answered %s: %s)", e.Err, e.Code, e.Message)
}

// Unwrap returns the cause of the refresh failure.
func (e *RefreshError) Unwrap() error { return e.Err }

// errMissingAuthenticator fails every call of an interceptor built
// without an authenticator.
var errMissingAuthenticator = errors.New("connectauth: interceptor built with a nil authenticator")

// fail is the error of a call whose refused attempt led to o.
func fail(ctx context.Context, o retry.Outcome, callErr, cause error) error {
	switch o {
	case retry.Withheld:
		return withheldError(callErr)
	case retry.ContextEnded:
		return contextError(ctx.Err())
	case retry.RefreshFailed:
		code := connect.CodeOf(callErr)
		return connect.NewError(code, &RefreshError{Code: code, Message: message(callErr), Err: cause})
	}
	return callErr
}

// contextError is the error of a call whose caller's context ended: it
// carries the context's code.
func contextError(err error) error {
	code := connect.CodeCanceled
	if errors.Is(err, context.DeadlineExceeded) {
		code = connect.CodeDeadlineExceeded
	}
	return connect.NewError(code, err)
}

// withheldError explains a rejection of a call whose token was withheld
// because the base URL is plain HTTP to a host that is not loopback.
func withheldError(err error) error {
	return connect.NewError(connect.CodeOf(err), fmt.Errorf("%s; connectauth: no token was sent because the base URL is plain HTTP to a host that is not loopback: use https, or interceptor.WithInsecure() (Flyte's insecure: true) for a plaintext development cluster", message(err)))
}

func message(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}
