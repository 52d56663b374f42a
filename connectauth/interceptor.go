package connectauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/retry"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Interceptor is a connect.Interceptor that authenticates a connect-go
// client's calls to one base URL: it attaches the authenticator's token to
// every call and, when the server rejects a call with a refresh code before
// any response message, refreshes the token and sends the call again once.
// It runs on the same retry engine, with the same options, as the gRPC
// interceptors of package interceptor. Handlers are left alone. It is safe
// for concurrent use.
type Interceptor struct {
	p retry.Policy
	o *retry.Options
	// mayCarry is whether the base URL may carry a token: https, loopback
	// http, or any http with interceptor.WithInsecure.
	mayCarry bool
}

var _ connect.Interceptor = (*Interceptor)(nil)

// NewInterceptor returns an interceptor that authenticates calls to
// baseURL (the URL given to the generated client constructor) with a, with
// the options of package interceptor (WithInsecure, WithRefreshCodes,
// WithSkipMethods, WithMaxReplay, WithLogger, WithOnRetry). It fails on a
// nil a (or an a holding a nil pointer) and on a baseURL that is not an
// absolute http(s) URL. A plain-HTTP baseURL to a host that is not
// loopback is accepted: its calls go out without a token unless
// interceptor.WithInsecure is given.
func NewInterceptor(a authenticator.Authenticator, baseURL string, opts ...interceptor.Option) (*Interceptor, error) {
	if nilcheck.Nil(a) {
		return nil, errMissingAuthenticator
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("connectauth: base URL %q is not an absolute http(s) URL", redact.Clip(baseURL, 200))
	}
	o := retry.NewOptions(opts)
	i := &Interceptor{p: retry.TokenPolicy(a, o, nil), o: o, mayCarry: u.Scheme == "https" || o.Insecure || transportsec.LoopbackHost(u.Hostname())}
	if !i.mayCarry {
		o.Logger.Warn("connectauth: the base URL is plain HTTP to a host that is not loopback: calls go out without a token; use https, or WithInsecure for a development cluster", "host", u.Host)
	}
	return i, nil
}

// String describes the interceptor without its authenticator's internals,
// so no secret or token is ever printed.
func (i *Interceptor) String() string {
	return fmt.Sprintf("connectauth.Interceptor{authenticator: %T, token over this base URL: %t}", i.p.Creds, i.mayCarry)
}

// GoString is String, for %#v.
func (i *Interceptor) GoString() string { return i.String() }

// withheld marks an attempt whose token was held back from plain HTTP.
type withheld struct{}

func (withheld) Withheld() bool { return true }

// attach sets the current token on h, the request header of one attempt,
// and says what the attempt carries. On the hot path it is an atomic load
// and one header Set. With no token at hand, or a caller whose context
// ended, the attempt goes out without one: connect-go reports the latter.
func (i *Interceptor) attach(ctx context.Context, h http.Header) (key string, _ retry.Carried) {
	key, value, err := i.p.Credential(ctx)
	switch {
	case err != nil || value == "":
		return "", retry.Carried{}
	case !i.mayCarry:
		return "", retry.Carried{Value: value, W: withheld{}}
	}
	h.Set(key, value)
	return key, retry.Carried{Value: value}
}

// decide is the engine's decision on a failed attempt, as an error: nil
// to retry.
func (i *Interceptor) decide(ctx context.Context, procedure string, c retry.Carried, err error, retried bool) error {
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

// WrapUnary attaches the token to a unary client call and retries it once
// after a refresh when it is rejected. Unary handlers are returned as they
// are.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if !spec.IsClient || i.o.Skip[spec.Procedure] {
			return next(ctx, req)
		}
		for retried := false; ; retried = true {
			_, c := i.attach(ctx, req.Header())
			resp, err := next(ctx, req)
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

// WrapStreamingHandler returns next: the interceptor is for clients.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
