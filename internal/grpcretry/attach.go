// Package grpcretry is the gRPC adapter of the retry engine (package
// retry): per-RPC credentials per attempt, the unary loop, the stream with
// gRPC's Header, Trailer and Context, and gRPC's spelling of the errors.
// Package interceptor's interceptors are built from it: one for the OAuth2
// token, one for the proxy token.
package grpcretry

import (
	"context"
	"errors"
	"maps"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/retry"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Auth is what one interceptor shares across its calls: the retry
// engine's policy for its credential, and the gRPC way of attaching it.
type Auth struct {
	p retry.Policy
	o *retry.Options
	// merge is set for the proxy credential: it rides beside the per-RPC
	// credentials the call already carries (gRPC keeps only the last).
	merge bool
	// watch is set for the proxy credential: each attempt records whether
	// it was answered in gRPC (answer), since only a proxy's refusal is not.
	watch bool
	// dial is set when the credential rides on per-RPC credentials
	// installed on the connection (DialOptions), not on a call option per
	// attempt: a call then costs no allocation of its own.
	dial bool
	// tok is the metadata of the last credential attached, built once per
	// value and shared, read-only, by every call that carries it.
	tok atomic.Pointer[tokenMD]
}

// tokenMD is one credential as per-RPC credentials return it.
type tokenMD struct {
	key, value string
	md         map[string]string
}

// inlineOpts is how many call options an attempt holds without an
// allocation of their own: the caller's, plus the credentials.
const inlineOpts = 4

// callCreds are the per-RPC credentials of one attempt of a call. gRPC asks
// them for the credential with the AuthInfo of the transport the attempt
// actually uses, so the "may this transport carry a token" decision is made
// per attempt (transportsec), never per connection. They are their own
// grpc.CallOption, and hold the attempt's option slice, so that attaching
// a credential costs one allocation.
type callCreds struct {
	grpc.PerRPCCredsCallOption // its Creds is the callCreds itself
	x                          *Auth
	tok                        *tokenMD
	inner                      credentials.PerRPCCredentials // the call's own, for the proxy credential
	withheld                   atomic.Bool                   // the credential was held back from an insecure transport
	answer                                                   // watched when the Auth watches
	opts                       [inlineOpts + 2]grpc.CallOption
}

// answer records whether an attempt was answered in gRPC. grpc-go gives a
// gRPC response's metadata, which always holds its content type, to
// grpc.Header (or, for a response that is all trailers, to grpc.Trailer),
// and nothing for an HTTP answer that is not gRPC, such as a proxy's 401.
// grpc-go writes both before the attempt's error is returned to the
// goroutine that judges it.
type answer struct{ hdr, trl metadata.MD }

// Answered reports whether the attempt got a gRPC response.
func (a *answer) Answered() bool { return len(a.hdr) > 0 || len(a.trl) > 0 }

// watchOpts appends to opts the call options that fill a.
func (a *answer) watchOpts(opts []grpc.CallOption) []grpc.CallOption {
	return append(opts, grpc.Header(&a.hdr), grpc.Trailer(&a.trl))
}

// GetRequestMetadata returns the credential's metadata on a secure
// transport, or with WithInsecure; else none, and the attempt records that
// its credential was withheld.
func (c *callCreds) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	var md map[string]string
	if c.inner != nil {
		var err error
		if md, err = c.inner.GetRequestMetadata(ctx, uri...); err != nil {
			return nil, err
		}
	}
	if !c.x.o.Insecure {
		if secure, method := transportsec.SecureContext(ctx); !secure {
			c.withheld.Store(true)
			c.x.p.Logger.Debug("grpcauth: not sending the "+c.x.p.What+": the transport has no transport security", "method", method)
			return md, nil
		}
	}
	if len(md) == 0 {
		return c.tok.md, nil
	}
	out := maps.Clone(md)
	out[c.tok.key] = c.tok.value
	return out, nil
}

// RequireTransportSecurity is false so that gRPC does not fail the call on
// an insecure transport: GetRequestMetadata withholds the credential
// instead, and the call goes out without it. It is true only when the inner
// credentials require it.
func (c *callCreds) RequireTransportSecurity() bool {
	return c.inner != nil && c.inner.RequireTransportSecurity()
}

// Withheld reports whether gRPC was refused the credential because the
// attempt's transport has no transport security.
func (c *callCreds) Withheld() bool { return c.withheld.Load() }

// attach adds the current credential to an attempt of a call, as per-RPC
// credentials appended to opts. c, when not nil, is storage for the
// credentials (a stream keeps one in its own allocation); else they are
// allocated here. On the hot path this is an atomic load and that one
// allocation; the map gRPC reads the token from is built once per token.
//
// With no credential yet (a lazily started login), the call goes out
// without one; when none could be got, or the caller's context ended,
// attach returns the call's error.
func (x *Auth) attach(ctx context.Context, opts []grpc.CallOption, c *callCreds) ([]grpc.CallOption, retry.Carried, error) {
	key, value, err := x.p.Credential(ctx)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, retry.Carried{Unsent: true}, &contextEnded{
				code: status.FromContextError(cerr).Code(),
				msg:  "grpcauth: the call's context ended while waiting for a " + x.p.What + ": " + cerr.Error(),
				err:  cerr,
			}
		}
		if errors.Is(err, authenticator.ErrClosed) {
			return nil, retry.Carried{Unsent: true}, status.Error(codes.Canceled, "grpcauth: "+err.Error())
		}
		if x.p.Cause != nil {
			return nil, retry.Carried{Unsent: true}, x.p.Cause(err) // the proxy's *ProxyCredentialError
		}
		return nil, retry.Carried{Unsent: true}, &noToken{err}
	}
	if value == "" {
		return opts, retry.Carried{}, nil
	}
	if x.dial {
		// The connection's credentials read the current credential when
		// the attempt is sent: never one that another call attached.
		carried := retry.Carried{Value: value}
		if x.watch {
			a := new(answer)
			carried.A = a
			opts = a.watchOpts(opts[:len(opts):len(opts)])
		}
		return opts, carried, nil
	}
	t := x.md(key, value)
	if c == nil {
		c = new(callCreds)
	}
	c.x, c.tok = x, t
	c.Creds = c
	if x.merge {
		c.inner = innerCreds(opts)
	}
	carried := retry.Carried{Value: value, W: c}
	if len(opts) < inlineOpts {
		opts = append(append(c.opts[:0], opts...), c)
	} else {
		opts = append(opts[:len(opts):len(opts)], c)
	}
	if x.watch {
		carried.A = &c.answer
		opts = c.watchOpts(opts)
	}
	return opts, carried, nil
}

// DialOptions install the interceptors and the per-RPC credentials that
// carry the credential on the connection, so that a call costs no
// allocation of its own. On an attempt whose transport has no transport
// security (and no WithInsecure), those credentials fail the attempt
// before it is sent, with codes.Unauthenticated and a message that says
// why; the attempt is not retried.
func (x *Auth) DialOptions() []grpc.DialOption {
	x.dial, x.merge = true, false
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(x.Unary),
		grpc.WithChainStreamInterceptor(x.Stream),
		grpc.WithPerRPCCredentials(connCreds{x}),
	}
}

// connCreds are the per-RPC credentials of DialOptions: the current
// credential, for every attempt of the connection.
type connCreds struct{ x *Auth }

// GetRequestMetadata returns the credential's metadata on a secure
// transport, or with WithInsecure; else it fails the attempt.
// AuthMetadataService's RPCs, which the interceptors pass through, carry
// no token.
func (c connCreds) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	secure, method := transportsec.SecureContext(ctx)
	if c.x.o.Skip[method] {
		return nil, nil
	}
	// The current credential: the interceptor got it (or found none) for
	// this attempt a moment ago, so this is a lock-free load.
	key, value, err := c.x.p.Creds.Credential(ctx)
	switch {
	case err != nil || value == "":
		return nil, nil
	case !secure && !c.x.o.Insecure:
		c.x.p.Logger.Debug("grpcauth: not sending the "+c.x.p.What+": the transport has no transport security", "method", method)
		return nil, errWithheld(c.x.p.What)
	}
	return c.x.md(key, value).md, nil
}

// RequireTransportSecurity is false: GetRequestMetadata decides per
// attempt, for the transport it uses.
func (connCreds) RequireTransportSecurity() bool { return false }

// md returns the metadata of a credential, built once per value and shared,
// read-only, by every attempt that carries it.
func (x *Auth) md(key, value string) *tokenMD {
	t := x.tok.Load()
	if t == nil || t.value != value || t.key != key {
		t = &tokenMD{key: key, value: value, md: map[string]string{key: value}}
		x.tok.Store(t)
	}
	return t
}

// innerCreds returns the per-RPC credentials that opts already carry (the
// OAuth2 interceptor's, or the caller's).
func innerCreds(opts []grpc.CallOption) credentials.PerRPCCredentials {
	for i := len(opts) - 1; i >= 0; i-- {
		switch o := opts[i].(type) {
		case *callCreds:
			return o
		case grpc.PerRPCCredsCallOption:
			return o.Creds
		case *grpc.PerRPCCredsCallOption:
			return o.Creds
		}
	}
	return nil
}

// fail is the error of a call whose refused attempt led to o.
func (x *Auth) fail(ctx context.Context, o retry.Outcome, callErr, cause error) error {
	switch o {
	case retry.Withheld:
		return withheldError(callErr)
	case retry.RefreshFailed, retry.ContextEnded:
		st := status.Convert(callErr)
		re := &RefreshError{Code: st.Code(), Message: st.Message(), Err: cause}
		if o == retry.ContextEnded {
			// The caller gave up waiting: that, not the credentials, is
			// why the call ends.
			return &contextEnded{code: status.FromContextError(ctx.Err()).Code(), msg: re.Error(), err: re}
		}
		return re
	}
	return callErr
}

// decide is the engine's decision on a failed unary attempt, as an error:
// nil to retry.
func (x *Auth) decide(ctx context.Context, method string, c retry.Carried, err error, retried bool) error {
	o, cause := x.p.Decide(ctx, method, c, status.Code(err), err, retried)
	switch o {
	case retry.Retry:
		return nil
	case retry.Return:
		return err
	}
	return x.fail(ctx, o, err, cause)
}

// missingAuthenticator is the error of every call through an interceptor
// built without an authenticator.
var missingAuthenticator = status.Error(codes.Internal, "grpcauth: interceptor built with a nil authenticator")

// FailUnary and FailStream are the interceptors of a nil authenticator.
func FailUnary(context.Context, string, any, any, *grpc.ClientConn, grpc.UnaryInvoker, ...grpc.CallOption) error {
	return missingAuthenticator
}

// FailStream fails every stream, as FailUnary every unary call.
func FailStream(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, grpc.Streamer, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, missingAuthenticator
}
