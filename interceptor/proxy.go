package interceptor

import (
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/grpcretry"
	"github.com/flyteauth/grpcauth/internal/httpauth"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
	"github.com/flyteauth/grpcauth/internal/retry"
)

// IsProxyRejection reports whether err is a proxy's refusal of a gRPC
// call: an HTTP 401 or 407 answer instead of a gRPC response, which only a
// proxy in front of the server gives (grpc-go reports it as
// Unauthenticated or Unknown, "unexpected HTTP status code received from
// server: 401"). A codes.Unauthenticated from FlyteAdmin itself is not one.
// The text alone cannot tell a proxy's refusal from a service that relays
// it in gRPC from an upstream call of its own, so the proxy interceptors
// also check that the attempt got no gRPC response before they run the
// proxy command again and resend the call; err alone cannot show that.
func IsProxyRejection(err error) bool { return grpcretry.IsProxyRejection(err) }

// ProxyCredentialError reports that no proxy credential could be got,
// such as when the proxyCommand fails. A call that had none yet is not
// sent and fails with it (status.Code reports codes.Unauthenticated); a
// call the proxy refused fails with a *RefreshError that wraps it. Its
// field Err is the cause, such as an *authenticator.CommandError, which
// errors.As reaches.
type ProxyCredentialError = grpcretry.ProxyCredentialError

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
		return grpcretry.FailUnary
	}
	return grpcretry.NewProxyAuth(a, retry.NewOptions(opts)).Unary
}

// ProxyStreamClientInterceptor is ProxyUnaryClientInterceptor for
// streams. A proxy refuses a stream before the server sees it, so the
// refusal comes before any response: at stream creation, at Header or at
// the first RecvMsg. The stream is then opened again with a new credential
// and what the caller had sent is replayed, as StreamClientInterceptor
// does. It is safe for concurrent use.
func ProxyStreamClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.StreamClientInterceptor {
	if nilcheck.Nil(a) {
		return grpcretry.FailStream
	}
	return grpcretry.NewProxyAuth(a, retry.NewOptions(opts)).Stream
}

// ProxyTransport returns an http.RoundTripper that adds a's credential,
// as "Proxy-Authorization: Bearer <token>", to every request it sends
// through base (http.DefaultTransport when nil): token requests and calls
// of FlyteAdmin's HTTP API. When the proxy refuses a request (a 407, or a
// 401 with a Proxy-Authenticate challenge), it refreshes the credential
// and sends the request again once, if its body can be read again (a nil
// body, or http.Request.GetBody set, as http.NewRequest sets it).
//
// The credential goes only to https:// URLs and to http:// on a loopback
// host, unless WithInsecure is given, and never to a redirect hop of
// another scheme or host; WithLogger and WithOnRetry apply too. It is safe
// for concurrent use.
func ProxyTransport(a authenticator.Authenticator, base http.RoundTripper, opts ...Option) http.RoundTripper {
	var creds httpauth.Credentials
	if !nilcheck.Nil(a) {
		creds = a
	}
	o := retry.NewOptions(opts)
	t := &httpauth.Transport{
		Base:      base,
		Creds:     creds,
		Refused:   grpcretry.IsProxyRejectedResponse,
		AllowHTTP: o.Insecure,
		What:      "proxy credential",
		Logger:    o.Logger,
	}
	if o.OnRetry != nil {
		t.OnRetry = func(path string) { o.OnRetry(path, codes.Unauthenticated) }
	}
	return t
}
