// Package connectretry is the connect-go adapter of the retry engine
// (package retry): the token in a request header per attempt, the unary
// loop, the stream with connect-go's headers, and connect-go's spelling of
// the errors. connectauth.Interceptor is built from it.
package connectretry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/grpcretry"
	"github.com/flyteauth/grpcauth/internal/retry"
)

// Auth is what one connect-go interceptor shares across its calls.
type Auth struct {
	p retry.Policy
	o *retry.Options
	// mayCarry is whether the base URL may carry a token: https, loopback
	// http, or any http with WithInsecure.
	mayCarry bool
}

// New returns the adapter for a's token, with options o, for a base URL
// that may carry a token or not.
func New(a authenticator.Authenticator, o *retry.Options, mayCarry bool) *Auth {
	return &Auth{p: retry.TokenPolicy(a, o, nil), o: o, mayCarry: mayCarry}
}

// withheld marks an attempt whose token was held back from plain HTTP.
type withheld struct{}

func (withheld) Withheld() bool { return true }

// credential gets the token for one attempt and says what the attempt
// carries; key with an empty value is a token withheld from plain HTTP. On
// the hot path it is an atomic load. With no token yet (a lazily started
// login), the attempt goes out without one; when none could be got, or the
// caller's context ended, it returns the call's error.
func (i *Auth) credential(ctx context.Context) (key, value string, _ retry.Carried, _ error) {
	key, value, err := i.p.Credential(ctx)
	switch {
	case ctx.Err() != nil:
		return "", "", retry.Carried{Unsent: true}, contextError(ctx.Err())
	case errors.Is(err, authenticator.ErrClosed):
		// After Close, no call goes out, with a token or without.
		return "", "", retry.Carried{Unsent: true}, connect.NewError(connect.CodeCanceled, fmt.Errorf("connectauth: %w", err))
	case err != nil:
		return "", "", retry.Carried{Unsent: true}, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("connectauth: no token, the call was not sent: %w", err))
	case value == "":
		return "", "", retry.Carried{}, nil
	case !i.mayCarry:
		return key, "", retry.Carried{Value: value, W: withheld{}}, nil
	}
	return key, value, retry.Carried{Value: value}, nil
}

// attach sets the current token on h, the request header of one attempt,
// and returns the header key it went in ("" for none) and what the attempt
// carries; see credential.
func (i *Auth) attach(ctx context.Context, h http.Header) (string, retry.Carried, error) {
	key, value, c, err := i.credential(ctx)
	if err != nil {
		return "", c, err
	}
	return put(h, key, value), c, nil
}

// put sets value under key on h and returns key; with no value it removes
// key (whatever an earlier call left there) and returns "".
func put(h http.Header, key, value string) string {
	if value == "" {
		if key != "" {
			h.Del(key)
		}
		return ""
	}
	h.Set(key, value)
	return key
}

// decide is the engine's decision on a failed attempt, as an error: nil
// to retry.
func (i *Auth) decide(ctx context.Context, procedure string, c retry.Carried, err error, retried bool) error {
	o, cause := i.p.Decide(ctx, procedure, c, code(err), err, retried)
	switch o {
	case retry.Retry:
		return nil
	case retry.Return:
		return err
	}
	return fail(ctx, o, err, cause)
}

// code is the retry engine's view of a connect-go error: connect's codes
// have gRPC's numbers.
func code(err error) codes.Code { return codes.Code(connect.CodeOf(err)) }

// Unary attaches the token to a unary client call and retries it once
// after a refresh when it is rejected. Unary handlers are returned as they
// are.
func (i *Auth) Unary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if !spec.IsClient || i.o.Skip[spec.Procedure] {
			return next(ctx, req)
		}
		for retried := false; ; retried = true {
			key, c, err := i.attach(ctx, req.Header())
			if err != nil {
				return nil, err
			}
			resp, err := next(ctx, req)
			if key != "" {
				// The request is the caller's: it keeps no token of ours,
				// should it be sent again elsewhere.
				req.Header().Del(key)
			}
			if err == nil {
				i.p.Accepted(c)
				return resp, nil
			}
			if err = i.decide(ctx, spec.Procedure, c, err, retried); err != nil {
				return nil, err
			}
		}
	}
}

// fail is the error of a call whose refused attempt led to o.
func fail(ctx context.Context, o retry.Outcome, callErr, cause error) error {
	switch o {
	case retry.Withheld:
		return withheldError(callErr)
	case retry.ContextEnded:
		// The caller gave up waiting: that is why the call ends, and
		// errors.As still reaches why the refresh failed.
		code := connect.CodeOf(callErr)
		re := &grpcretry.RefreshError{Code: codes.Code(code), Message: message(callErr), Err: cause}
		return connect.NewError(connect.CodeOf(contextError(ctx.Err())), fmt.Errorf("%w: %w", ctx.Err(), re))
	case retry.RefreshFailed:
		code := connect.CodeOf(callErr)
		return connect.NewError(code, &grpcretry.RefreshError{Code: codes.Code(code), Message: message(callErr), Err: cause})
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
