package grpcretry

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
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
//     server: 401" (or 407): IsProxyRejection. A service can answer that
//     very text in gRPC, relaying the failure of its own upstream call; so
//     the proxy interceptors also watch whether the attempt got a gRPC
//     response, and one that did was the service's answer: the call ran,
//     and is neither refreshed for nor sent again. A codes.Unauthenticated
//     from FlyteAdmin itself is left to the OAuth2 interceptors.
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

// isProxyFailure reports whether err is the proxy's doing: its refusal
// (IsProxyRejection), or a failure to get a proxy credential
// (*ProxyCredentialError anywhere in the chain). Refreshing the OAuth2
// token cannot help such a call: the OAuth2 interceptors should return err
// as it is.
func isProxyFailure(err error) bool {
	var pe *ProxyCredentialError
	return IsProxyRejection(err) || errors.As(err, &pe)
}

// NewTokenAuth is the OAuth2 token's policy on gRPC: refreshed when the
// server answers a refresh code, never for a proxy's refusal (a new token
// cannot get a call past the proxy).
func NewTokenAuth(a authenticator.Authenticator, o *retry.Options) *Auth {
	return &Auth{o: o, p: retry.TokenPolicy(a, o, func(err error) bool { return !isProxyFailure(err) && !isWithheld(err) })}
}

// NewProxyAuth is the proxy credential's policy: required on every call
// (AuthMetadataService's included), refreshed when the proxy refuses it,
// carried beside the call's own per-RPC credentials.
func NewProxyAuth(a authenticator.Authenticator, o *retry.Options) *Auth {
	o.Skip = nil // no method passes the proxy without its credential
	refused := func(c retry.Carried, err error) bool { return IsProxyRejection(err) && !c.Answered() }
	return &Auth{o: o, merge: true, watch: true, p: retry.Policy{
		Creds:   a,
		Refused: func(c retry.Carried, _ codes.Code, err error) bool { return refused(c, err) && !isWithheld(err) },
		Passed:  func(c retry.Carried, err error) bool { return !refused(c, err) && !isWithheld(err) },
		Cause:   func(err error) error { return &ProxyCredentialError{Err: err} },
		What:    "proxy credential",
		Logger:  o.Logger,
		OnRetry: o.OnRetry,
	}}
}
