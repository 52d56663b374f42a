package interceptor

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/httpauth"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
	"github.com/flyteauth/grpcauth/internal/retry"
)

// This file is Flyte's proxyCommand: a second credential, for an
// identity-aware proxy (such as Google's IAP) in front of FlyteAdmin, sent
// on every gRPC call and every HTTP request, and refreshed when the proxy,
// not the service behind it, refuses it.
//
// Telling the proxy's refusal from the service's:
//
//   - gRPC: a proxy refuses a call before any gRPC server sees it, with a
//     plain HTTP 401 or 407 answer. grpc-go reports such an answer, which
//     no gRPC server gives (a gRPC server answers HTTP 200 and a
//     grpc-status), as codes.Unauthenticated (401) or codes.Unknown (407)
//     with a message that starts "unexpected HTTP status code received from
//     server: 401" (or 407). That is the rule (IsProxyRejection); a
//     codes.Unauthenticated from FlyteAdmin itself is left to the OAuth2
//     interceptors.
//   - HTTP: a 407 Proxy Authentication Required, or a 401 that carries a
//     Proxy-Authenticate challenge (IsProxyRejectedResponse). A 401 without
//     one is the token endpoint's or the HTTP API's own answer. A proxy
//     whose 401 carries no challenge is still served: its token, a JWT, is
//     refreshed at its expiry by the authenticator.

// httpStatusPrefix starts the message grpc-go gives a call whose answer was
// an HTTP error rather than a gRPC response.
const httpStatusPrefix = "unexpected HTTP status code received from server: "

// IsProxyRejection reports whether err is a proxy's refusal of a gRPC
// call: an HTTP 401 or 407 answer instead of a gRPC response, which only a
// proxy in front of the server gives.
func IsProxyRejection(err error) bool {
	st, ok := status.FromError(err)
	if !ok || (st.Code() != codes.Unauthenticated && st.Code() != codes.Unknown) {
		return false
	}
	rest, ok := strings.CutPrefix(st.Message(), httpStatusPrefix)
	return ok && (strings.HasPrefix(rest, "401 ") || strings.HasPrefix(rest, "407 "))
}

// IsProxyRejectedResponse reports whether resp is a proxy's refusal of an
// HTTP request: a 407, or a 401 that carries a Proxy-Authenticate header.
func IsProxyRejectedResponse(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusProxyAuthRequired:
		return true
	case http.StatusUnauthorized:
		return resp.Header.Get("Proxy-Authenticate") != ""
	}
	return false
}

// ProxyCredentialError reports that no proxy credential could be got,
// such as when the proxyCommand fails. A call that had none yet is not
// sent and fails with it (status.Code reports codes.Unauthenticated); a
// call the proxy refused fails with a *RefreshError that wraps it. errors.As
// reaches the cause, such as an *authenticator.CommandError.
type ProxyCredentialError struct {
	// Err is why no credential could be got.
	Err error
}

// Error says why no proxy credential could be got.
func (e *ProxyCredentialError) Error() string {
	return fmt.Sprintf("grpcauth: getting the proxy credential failed: %v", e.Err)
}

// Unwrap returns the cause.
func (e *ProxyCredentialError) Unwrap() error { return e.Err }

// GRPCStatus makes status.Code report codes.Unauthenticated, with Error()
// as the message.
func (e *ProxyCredentialError) GRPCStatus() *status.Status {
	return status.New(codes.Unauthenticated, e.Error())
}

// IsProxyFailure reports whether err is the proxy's doing: its refusal
// (IsProxyRejection), or a failure to get a proxy credential
// (*ProxyCredentialError anywhere in the chain). Refreshing the OAuth2
// token cannot help such a call: the OAuth2 interceptors should return err
// as it is.
func IsProxyFailure(err error) bool {
	var pe *ProxyCredentialError
	return IsProxyRejection(err) || errors.As(err, &pe)
}

// ProxyUnaryClientInterceptor returns an interceptor that sends a's
// credential, the proxy token of Flyte's proxyCommand, on every unary call
// (AuthMetadataService's included: the proxy stands in front of them too)
// and, when the proxy refuses the call (see IsProxyRejection), refreshes
// the credential and sends the call again once. Give a an authenticator
// whose header key is "proxy-authorization". A call for which no proxy
// credential can be got is not sent: it fails with a
// *ProxyCredentialError.
//
// Install it after (inside) the OAuth2 interceptors, so that it sees the
// proxy's refusal first:
//
//	grpc.WithChainUnaryInterceptor(interceptor.UnaryClientInterceptor(auth), interceptor.ProxyUnaryClientInterceptor(proxy))
//
// It runs on the same retry engine as UnaryClientInterceptor, with the
// same options, but for WithRefreshCodes and WithSkipMethods (the proxy's
// refusal is told by its answer, not its code, and no method passes the
// proxy without its credential). It is safe for concurrent use. With a nil
// a (or an a holding a nil pointer), every call fails with codes.Internal.
func ProxyUnaryClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.UnaryClientInterceptor {
	if nilcheck.Nil(a) {
		return failUnary
	}
	return newProxyAuth(a, opts).unary
}

// ProxyStreamClientInterceptor is ProxyUnaryClientInterceptor for
// streams. A proxy refuses a stream before the server sees it, so the
// refusal comes before any response: at stream creation, at Header or at
// the first RecvMsg. The stream is then opened again with a new credential
// and what the caller had sent is replayed, as StreamClientInterceptor
// does. It is safe for concurrent use.
func ProxyStreamClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.StreamClientInterceptor {
	if nilcheck.Nil(a) {
		return failStream
	}
	return newProxyAuth(a, opts).stream
}

// newProxyAuth is the proxy credential's policy: required on every call,
// refreshed when the proxy refuses it, carried beside the call's own
// per-RPC credentials.
func newProxyAuth(a authenticator.Authenticator, opts []Option) *auth {
	o := retry.NewOptions(opts)
	o.Skip = nil // no method passes the proxy without its credential
	return &auth{o: o, merge: true, p: retry.Policy{
		Creds:    a,
		Refused:  func(_ codes.Code, err error) bool { return IsProxyRejection(err) },
		Passed:   func(err error) bool { return !IsProxyRejection(err) },
		Required: true,
		Cause:    func(err error) error { return &ProxyCredentialError{Err: err} },
		What:     "proxy credential",
		Logger:   o.Logger,
		OnRetry:  o.OnRetry,
	}}
}

// ProxyTransport returns an http.RoundTripper that adds a's credential,
// as "Proxy-Authorization: Bearer <token>", to every request it sends
// through base (http.DefaultTransport when nil): token requests and calls
// of FlyteAdmin's HTTP API. When the proxy refuses a request (see
// IsProxyRejectedResponse), it refreshes the credential and sends the
// request again once, if its body can be read again (a nil body, or
// http.Request.GetBody set, as http.NewRequest sets it).
//
// The credential goes only to https:// URLs and to http:// on a loopback
// host, unless WithInsecure is given, and never to a redirect hop of
// another scheme or host; WithLogger and WithOnRetry apply too. It is safe
// for concurrent use.
func ProxyTransport(a authenticator.Authenticator, base http.RoundTripper, opts ...Option) http.RoundTripper {
	if nilcheck.Nil(a) {
		return failingTransport{}
	}
	o := retry.NewOptions(opts)
	t := &httpauth.Transport{
		Base:      base,
		Creds:     a,
		Refused:   IsProxyRejectedResponse,
		AllowHTTP: o.Insecure,
		Required:  true,
		What:      "proxy credential",
		Logger:    o.Logger,
	}
	if o.OnRetry != nil {
		t.OnRetry = func(path string) { o.OnRetry(path, codes.Unauthenticated) }
	}
	return t
}

// failingTransport is the transport of a nil authenticator.
type failingTransport struct{}

func (failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return nil, errors.New("grpcauth: proxy transport built with a nil authenticator")
}
