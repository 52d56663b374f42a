package connectauth

import (
	"errors"
	"fmt"
	"net/url"

	"connectrpc.com/connect"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/connectretry"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/retry"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Interceptor is a connect.Interceptor that authenticates a connect-go
// client's calls to one base URL: it attaches the authenticator's token to
// every call and, when the server rejects a call with a refresh code before
// any response message, refreshes the token and sends the call again once,
// replaying what a stream had sent within the bound. It runs on the same
// retry engine, with the same options, as the gRPC interceptors of package
// interceptor; a call whose refresh failed returns an
// *interceptor.RefreshError inside its *connect.Error. Handlers are left
// alone. It is safe for concurrent use.
type Interceptor struct {
	x        *connectretry.Auth
	a        authenticator.Authenticator
	mayCarry bool
}

var _ connect.Interceptor = (*Interceptor)(nil)

// errMissingAuthenticator fails NewInterceptor without an authenticator.
var errMissingAuthenticator = errors.New("connectauth: interceptor built with a nil authenticator")

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
	mayCarry := u.Scheme == "https" || o.Insecure || transportsec.LoopbackHost(u.Hostname())
	if !mayCarry {
		o.Logger.Warn("connectauth: the base URL is plain HTTP to a host that is not loopback: calls go out without a token; use https, or allow plaintext explicitly for a development cluster (Flyte's insecure: true)", "host", u.Host)
	}
	return &Interceptor{x: connectretry.New(a, o, mayCarry), a: a, mayCarry: mayCarry}, nil
}

// Format describes the interceptor for every fmt verb without its
// authenticator's internals, so no secret or token is ever printed.
func (i *Interceptor) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "connectauth.Interceptor{authenticator: %T, token over this base URL: %t}", i.a, i.mayCarry)
}

// WrapUnary attaches the token to a unary client call and retries it once
// after a refresh when it is rejected. Unary handlers are returned as they
// are.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return i.x.Unary(next) }

// WrapStreamingClient attaches the token to a client, server or bidi
// stream and, when the stream fails with a refresh code before any response
// message arrived, refreshes the token, opens the stream again with the
// same request headers and replays what the caller had sent (within the
// replay bound). The retry happens in Receive; a caller that read
// ResponseHeader before it sees the failed attempt's header.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return i.x.Streaming(next)
}

// WrapStreamingHandler returns next: the interceptor is for clients.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
