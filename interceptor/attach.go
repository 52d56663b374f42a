package interceptor

import (
	"context"
	"reflect"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
)

// auth is what one interceptor shares across its calls.
type auth struct {
	a  authenticator.Authenticator
	rr authenticator.RejectionRefresher // a, when it implements it
	ac accepter                         // a, when it implements it
	o  *options
	// conn is the security of the last connection a token was sent on;
	// interceptors usually serve one connection, so one entry suffices.
	conn atomic.Pointer[connSecurity]
}

type connSecurity struct {
	cc     *grpc.ClientConn
	secure bool
}

func newAuth(a authenticator.Authenticator, opts []Option) *auth {
	x := &auth{a: a, o: newOptions(opts)}
	x.rr, _ = a.(authenticator.RejectionRefresher)
	x.ac, _ = a.(accepter)
	return x
}

// accepter is implemented by authenticators that want to hear that a call
// carrying their token succeeded (the Keeper ends a rejection backoff).
type accepter interface{ Accepted(value string) }

// accepted reports a successful attempt to the authenticator.
func (x *auth) accepted(at attempt) {
	if x.ac != nil && at.value != "" {
		x.ac.Accepted(at.value)
	}
}

// attempt is what one attempt of a call carried.
type attempt struct {
	value    string      // the metadata value sent, "" if none
	withheld bool        // a token was held back: the connection is not secure
	probe    *probeCreds // set when the connection's security was not known yet
}

func (at attempt) wasWithheld() bool {
	return at.withheld || (at.probe != nil && at.probe.withheld.Load())
}

// attach adds the current credentials to a call. On the hot path (a token,
// a connection known to be secure) it is an atomic load and
// metadata.AppendToOutgoingContext.
func (x *auth) attach(ctx context.Context, cc *grpc.ClientConn, opts []grpc.CallOption) (context.Context, []grpc.CallOption, attempt) {
	key, value, ok := x.a.FetchGRPCCallAuthMetadata(ctx)
	if !ok {
		return ctx, opts, attempt{}
	}
	if !x.o.insecure {
		known := x.conn.Load()
		if known == nil || known.cc != cc || cc == nil {
			// Let gRPC tell us the connection's security at the first call:
			// per-RPC credentials see the transport's AuthInfo.
			p := &probeCreds{x: x, cc: cc, key: key, value: value}
			return ctx, append(opts[:len(opts):len(opts)], grpc.PerRPCCredentials(p)), attempt{value: value, probe: p}
		}
		if !known.secure {
			return ctx, opts, attempt{withheld: true}
		}
	}
	return metadata.AppendToOutgoingContext(ctx, key, value), opts, attempt{value: value}
}

// afterFailure decides what a failed attempt leads to: a refresh and a
// retry (true, nil), or the error to return (false, err).
func (x *auth) afterFailure(ctx context.Context, method string, at attempt, err error) (retry bool, _ error) {
	code := status.Code(err)
	if !x.o.refreshable(code) {
		return false, err
	}
	if at.wasWithheld() {
		return false, x.withheld(method, err)
	}
	if ctx.Err() != nil {
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
		return false, &RefreshError{Code: code, Message: status.Convert(err).Message(), Err: rerr}
	}
	if x.o.onRetry != nil {
		x.o.onRetry(method, code)
	}
	return true, nil
}

// afterRetry returns the error of a call's last attempt. If that attempt
// was rejected because its token was withheld (the first attempt went out
// with no token, the refresh got one, and the connection turned out not to
// be secure), the error says so, as it does for a first attempt.
func (x *auth) afterRetry(method string, at attempt, err error) error {
	if err != nil && at.wasWithheld() && x.o.refreshable(status.Code(err)) {
		return x.withheld(method, err)
	}
	return err
}

func (x *auth) withheld(method string, err error) error {
	x.o.logger.Warn("grpcauth: call rejected; its token was withheld on an insecure connection", "method", method)
	return withheldError(err)
}

// probeCreds sends the token as per-RPC credentials, which lets it see the
// transport's security before anything is sent, and records it for the
// connection's later calls.
type probeCreds struct {
	x          *auth
	cc         *grpc.ClientConn
	key, value string
	withheld   atomic.Bool
}

func (p *probeCreds) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	secure := isSecure(ri.AuthInfo)
	if p.cc != nil {
		p.x.conn.Store(&connSecurity{cc: p.cc, secure: secure})
	}
	if !secure {
		p.withheld.Store(true)
		p.x.o.logger.Warn("grpcauth: not sending the token: the connection has no transport security; use TLS, or WithInsecure for a plaintext development cluster", "method", ri.Method)
		return nil, nil
	}
	return map[string]string{p.key: p.value}, nil
}

// RequireTransportSecurity is false so that gRPC does not fail the call on
// an insecure connection: GetRequestMetadata withholds the token instead.
func (p *probeCreds) RequireTransportSecurity() bool { return false }

// isSecure reports whether a transport offers privacy and integrity, or is
// local (loopback or a Unix socket, through credentials/local).
func isSecure(ai credentials.AuthInfo) bool {
	if ai == nil {
		return false
	}
	if ai.AuthType() == "local" {
		return true
	}
	ci, ok := ai.(interface {
		GetCommonAuthInfo() credentials.CommonAuthInfo
	})
	return ok && ci.GetCommonAuthInfo().SecurityLevel == credentials.PrivacyAndIntegrity
}

// missingAuthenticator is the error of every call through an interceptor
// built without an authenticator.
var missingAuthenticator = status.Error(codes.Internal, "grpcauth: interceptor built with a nil authenticator")

// isNil reports whether a is nil, or an interface holding a nil pointer
// (such as the *Keeper of a failed constructor),
// whose methods would panic on the first call.
func isNil(a authenticator.Authenticator) bool {
	if a == nil {
		return true
	}
	v := reflect.ValueOf(a)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}
