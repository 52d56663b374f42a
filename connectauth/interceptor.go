package connectauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"connectrpc.com/connect"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Interceptor is a connect.Interceptor that authenticates a connect-go
// client's calls to one base URL: it attaches the authenticator's token to
// every call and, when the server rejects a call with a refresh code before
// any response message, refreshes the token and sends the call again once.
// Handlers are left alone. It is safe for concurrent use.
type Interceptor struct {
	a  authenticator.Authenticator
	rr authenticator.RejectionRefresher // a, when it implements it
	ac accepter                         // a, when it implements it
	o  *options
	// mayCarry is whether the base URL may carry a token: https, loopback
	// http, or any http with WithInsecure.
	mayCarry bool
}

var _ connect.Interceptor = (*Interceptor)(nil)

// NewInterceptor returns an interceptor that authenticates calls to
// baseURL (the URL given to the generated client constructor) with a. It
// fails on a nil a (or an a holding a nil pointer) and on a baseURL that
// is not an absolute http(s) URL. A plain-HTTP baseURL to a host that is
// not loopback is accepted: its calls go out without a token unless
// WithInsecure is given.
func NewInterceptor(a authenticator.Authenticator, baseURL string, opts ...Option) (*Interceptor, error) {
	if nilcheck.Nil(a) {
		return nil, errMissingAuthenticator
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("connectauth: base URL %q is not an absolute http(s) URL", redact.Clip(baseURL, 200))
	}
	o := newOptions(opts)
	i := &Interceptor{a: a, o: o, mayCarry: u.Scheme == "https" || o.insecure || transportsec.LoopbackHost(u.Hostname())}
	i.rr, _ = a.(authenticator.RejectionRefresher)
	i.ac, _ = a.(accepter)
	if !i.mayCarry {
		o.logger.Warn("connectauth: the base URL is plain HTTP to a host that is not loopback: calls go out without a token; use https, or WithInsecure for a development cluster", "host", u.Host)
	}
	return i, nil
}

// accepter is implemented by authenticators that want to hear that a call
// carrying their token succeeded (the Keeper ends a rejection backoff).
type accepter interface{ Accepted(value string) }

// accepted reports a successful attempt to the authenticator.
func (i *Interceptor) accepted(at attempt) {
	if i.ac != nil && at.value != "" {
		i.ac.Accepted(at.value)
	}
}

// String describes the interceptor without its authenticator's internals,
// so no secret or token is ever printed.
func (i *Interceptor) String() string {
	return fmt.Sprintf("connectauth.Interceptor{authenticator: %T, token over this base URL: %t}", i.a, i.mayCarry)
}

// GoString is String, for %#v.
func (i *Interceptor) GoString() string { return i.String() }

// attempt is what one attempt of a call carried.
type attempt struct {
	key      string // the header key of the token, "" if none was held
	value    string // the header value sent, "" if none
	withheld bool   // a token was held back: the base URL may not carry it
}

// attach sets the current token on h, the request header of one attempt.
// On the hot path it is an atomic load and one header Set.
func (i *Interceptor) attach(ctx context.Context, h http.Header) attempt {
	key, value, ok := i.a.FetchGRPCCallAuthMetadata(ctx)
	if !ok {
		return attempt{}
	}
	if !i.mayCarry {
		return attempt{key: key, withheld: true}
	}
	h.Set(key, value)
	return attempt{key: key, value: value}
}

// afterFailure decides what a failed attempt leads to: a refresh and a
// retry (true, nil), or the error to return (false, err).
func (i *Interceptor) afterFailure(ctx context.Context, procedure string, at attempt, err error) (retry bool, _ error) {
	code := connect.CodeOf(err)
	if !i.o.refreshable(code) {
		return false, err
	}
	if at.withheld {
		i.o.logger.Warn("connectauth: call rejected; its token was withheld on plain HTTP", "procedure", procedure)
		return false, withheldError(err)
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, contextError(cerr)
	}
	i.o.logger.Debug("connectauth: call rejected, refreshing credentials", "procedure", procedure, "code", code)
	var rerr error
	if i.rr != nil {
		rerr = i.rr.RefreshRejected(ctx, at.value)
	} else {
		rerr = i.a.RefreshCredentials(ctx)
	}
	if rerr != nil {
		return false, refreshFailed(ctx, err, rerr)
	}
	if i.o.onRetry != nil {
		i.o.onRetry(procedure, code)
	}
	return true, nil
}

// afterRetry returns the error of a call's last attempt, explaining a
// rejection of an attempt whose token was withheld.
func (i *Interceptor) afterRetry(at attempt, err error) error {
	if err != nil && at.withheld && i.o.refreshable(connect.CodeOf(err)) {
		return withheldError(err)
	}
	return err
}

// WrapUnary attaches the token to a unary client call and retries it once
// after a refresh when it is rejected. Unary handlers are returned as they
// are.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if !spec.IsClient || i.o.skip[spec.Procedure] {
			return next(ctx, req)
		}
		at := i.attach(ctx, req.Header())
		resp, err := next(ctx, req)
		if err == nil {
			i.accepted(at)
			return resp, nil
		}
		if retry, err := i.afterFailure(ctx, spec.Procedure, at, err); !retry {
			return nil, err
		}
		at = i.attach(ctx, req.Header())
		resp, err = next(ctx, req)
		if err != nil {
			return nil, i.afterRetry(at, err)
		}
		i.accepted(at)
		return resp, nil
	}
}

// WrapStreamingHandler returns next: the interceptor is for clients.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
