package interceptor

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// acceptor is implemented by authenticators that want to hear that a
// token was accepted by the server (the keeper resets its rejection backoff).
type acceptor interface {
	Accepted(value string)
}

// auth is what one interceptor shares across its calls.
type auth struct {
	a   authenticator.Authenticator
	rr  authenticator.RejectionRefresher // a, when it implements it
	acc acceptor                         // a, when it implements it
	o   *options
	// tok is the metadata of the last token attached, built once per token
	// value and shared, read-only, by every call that carries it.
	tok atomic.Pointer[tokenMD]
}

// tokenMD is one token as per-RPC credentials return it.
type tokenMD struct {
	key, value string
	md         map[string]string
}

func newAuth(a authenticator.Authenticator, opts []Option) *auth {
	x := &auth{a: a, o: newOptions(opts)}
	x.rr, _ = a.(authenticator.RejectionRefresher)
	x.acc, _ = a.(acceptor)
	return x
}

// inlineOpts is how many call options an attempt holds without an
// allocation of their own: the caller's, plus the credentials.
const inlineOpts = 4

// callCreds are the per-RPC credentials of one attempt of a call. gRPC asks
// them for the token with the AuthInfo of the transport the attempt
// actually uses, so the "may this transport carry a token" decision is made
// per attempt (transportsec), never per connection. They are their own
// grpc.CallOption, and hold the attempt's option slice, so that attaching
// a token costs one allocation.
type callCreds struct {
	grpc.PerRPCCredsCallOption // its Creds is the callCreds itself
	x                          *auth
	tok                        *tokenMD
	withheld                   atomic.Bool // the token was held back from an insecure transport
	opts                       [inlineOpts]grpc.CallOption
}

// GetRequestMetadata returns the token's metadata on a secure transport,
// or with WithInsecure; else nothing, and the attempt records that its
// token was withheld.
func (c *callCreds) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if c.x.o.insecure {
		return c.tok.md, nil
	}
	secure, method := transportsec.SecureContext(ctx)
	if secure {
		return c.tok.md, nil
	}
	c.withheld.Store(true)
	c.x.o.logger.Debug("grpcauth: not sending the token: the transport has no transport security", "method", method)
	return nil, nil
}

// RequireTransportSecurity is false so that gRPC does not fail the call on
// an insecure transport: GetRequestMetadata withholds the token instead,
// and the call goes out without it.
func (c *callCreds) RequireTransportSecurity() bool { return false }

// attempt is what one attempt of a call carried.
type attempt struct {
	value string     // the metadata value offered, "" if none
	creds *callCreds // nil when no token was offered
}

// sent reports whether the attempt's token went out (rather than being
// withheld from an insecure transport).
func (at attempt) sent() bool { return at.creds != nil && !at.creds.withheld.Load() }

func (at attempt) wasWithheld() bool { return at.creds != nil && at.creds.withheld.Load() }

// attach adds the current credentials to an attempt of a call, as per-RPC
// credentials appended to opts. c, when not nil, is storage for the
// credentials (a stream keeps one in its own allocation); else they are
// allocated here. On the hot path this is an atomic load and that one
// allocation; the map gRPC reads the token from is built once per token.
//
// With no token to attach because the caller's context ended while the
// authenticator was getting one, it returns the error of the call instead.
func (x *auth) attach(ctx context.Context, opts []grpc.CallOption, c *callCreds) ([]grpc.CallOption, attempt, error) {
	key, value, ok := x.a.FetchGRPCCallAuthMetadata(ctx)
	if !ok {
		if cerr := ctx.Err(); cerr != nil {
			return nil, attempt{}, &contextEnded{
				code: status.FromContextError(cerr).Code(),
				msg:  "grpcauth: the call's context ended while waiting for a token: " + cerr.Error(),
				err:  cerr,
			}
		}
		return opts, attempt{}, nil
	}
	t := x.tok.Load()
	if t == nil || t.value != value || t.key != key {
		t = &tokenMD{key: key, value: value, md: map[string]string{key: value}}
		x.tok.Store(t)
	}
	if c == nil {
		c = new(callCreds)
	}
	c.x, c.tok = x, t
	c.Creds = c
	at := attempt{value: value, creds: c}
	if len(opts) < inlineOpts {
		return append(append(c.opts[:0], opts...), c), at, nil
	}
	return append(opts[:len(opts):len(opts)], c), at, nil
}

// afterAttempt decides what a failed attempt of a call leads to, for unary
// calls and streams alike: a refresh and a retry (true, nil), or the error
// to return (false, err). retried says that the attempt was already the
// retry: its error is returned, explained if its token was withheld.
func (x *auth) afterAttempt(ctx context.Context, method string, at attempt, err error, retried bool) (retry bool, _ error) {
	code := status.Code(err)
	if !x.o.refreshable(code) || IsProxyFailure(err) {
		// A proxy's refusal is the proxy interceptors' business: a new
		// OAuth2 token cannot get a call past the proxy.
		return false, err
	}
	if at.wasWithheld() {
		return false, x.withheld(method, err)
	}
	if retried || ctx.Err() != nil {
		return false, err
	}
	x.o.logger.Debug("grpcauth: call rejected, refreshing credentials", "method", method, "code", code)
	var rerr error
	if x.rr != nil {
		rerr = x.rr.RefreshRejected(ctx, at.value)
	} else {
		rerr = x.a.RefreshCredentials(ctx)
	}
	if rerr != nil {
		re := &RefreshError{Code: code, Message: status.Convert(err).Message(), Err: rerr}
		if cerr := ctx.Err(); cerr != nil {
			// The caller gave up waiting: that, not the credentials, is
			// why the call ends.
			return false, &contextEnded{code: status.FromContextError(cerr).Code(), msg: re.Error(), err: re}
		}
		return false, re
	}
	if x.o.onRetry != nil {
		x.o.onRetry(method, code)
	}
	return true, nil
}

// accepted tells the authenticator that the server accepted the token an
// attempt carried.
func (x *auth) accepted(at attempt) {
	if x.acc != nil && at.sent() {
		x.acc.Accepted(at.value)
	}
}

func (x *auth) withheld(method string, err error) error {
	x.o.logger.Warn("grpcauth: call rejected; its token was withheld on an insecure transport", "method", method)
	return withheldError(err)
}

// missingAuthenticator is the error of every call through an interceptor
// built without an authenticator.
var missingAuthenticator = status.Error(codes.Internal, "grpcauth: interceptor built with a nil authenticator")
