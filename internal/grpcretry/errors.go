package grpcretry

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RefreshError is returned by a call that the server rejected and whose
// credentials could not be refreshed. status.Code(err) reports Code, the
// code of the rejected call; errors.As reaches the cause of the refresh
// failure, such as an *authenticator.TokenError. When the caller's own
// context ended while the call waited for the refresh, the call's error
// reports that context's code (codes.DeadlineExceeded or codes.Canceled)
// instead, and errors.As still reaches the RefreshError.
type RefreshError struct {
	// Code is the status code of the rejected call.
	Code codes.Code
	// Message is the status message of the rejected call.
	Message string
	// Err is why the refresh failed.
	Err error
}

// Error says why the refresh failed, then what the server had answered.
func (e *RefreshError) Error() string {
	return fmt.Sprintf("grpcauth: refreshing credentials failed: %v (the server had answered %s: %s)", e.Err, e.Code, e.Message)
}

// Unwrap returns the cause of the refresh failure.
func (e *RefreshError) Unwrap() error { return e.Err }

// GRPCStatus makes status.Code and status.Convert see the rejected call's
// code, with Error() as the message.
func (e *RefreshError) GRPCStatus() *status.Status { return status.New(e.Code, e.Error()) }

// noToken is the error of a call that was not sent because no token could
// be got: status.Code reports codes.Unauthenticated, and errors.As reaches
// the cause, such as an *authenticator.TokenError.
type noToken struct{ err error }

func (e *noToken) Error() string {
	return "grpcauth: no token, the call was not sent: " + e.err.Error()
}
func (e *noToken) Unwrap() error { return e.err }
func (e *noToken) GRPCStatus() *status.Status {
	return status.New(codes.Unauthenticated, e.Error())
}

// contextEnded is the error of a call whose caller's context ended while
// it waited for a token or a refresh: it reports the context's code, and
// unwraps to the RefreshError or to the context's error.
type contextEnded struct {
	code codes.Code
	msg  string
	err  error
}

func (e *contextEnded) Error() string              { return e.msg }
func (e *contextEnded) Unwrap() error              { return e.err }
func (e *contextEnded) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

// withheldError explains a rejection of a call whose token was withheld
// because the connection is not secure.
func withheldError(err error) error {
	st := status.Convert(err)
	return status.Errorf(st.Code(), "%s; grpcauth: %s", st.Message(), withheldText)
}

// withheldText is what every error of a withheld credential says.
const withheldText = "no token was sent because the connection has no transport security: use TLS, or interceptor.WithInsecure() (Flyte's insecure: true) for a plaintext development cluster"

// errWithheld fails an attempt whose credential may not go over its
// transport.
func errWithheld(what string) error {
	return status.Error(codes.Unauthenticated, "grpcauth: "+what+": "+withheldText)
}

// isWithheld reports whether err is errWithheld's: no new credential
// would get the call through.
func isWithheld(err error) bool {
	return strings.Contains(status.Convert(err).Message(), withheldText)
}
