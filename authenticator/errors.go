package authenticator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flyteauth/grpcauth/internal/redact"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrEmptySecret reports a client secret that is empty once trimmed of
	// surrounding whitespace.
	ErrEmptySecret = errors.New("client secret is empty")
	// ErrNoTokenEndpoint reports that neither WithTokenURL nor the config
	// store gave a token endpoint.
	ErrNoTokenEndpoint = errors.New("no token endpoint: none was set with WithTokenURL and the config store advertised none")
	// ErrNoEndpoint reports that a login's authorization or device
	// authorization endpoint was neither configured nor advertised; the
	// error's text says which.
	ErrNoEndpoint = errors.New("no endpoint")
)

// TokenError reports a failed token request. Its fields come from the
// token endpoint's answer (RFC 6749 §5.2) when there was one; Err holds the
// transport or decoding cause otherwise. Neither its text nor anything it
// wraps contains the client secret, a token or the raw response body.
type TokenError struct {
	// TokenURL is the endpoint that was asked, without any query or
	// user information.
	TokenURL string
	// StatusCode is the HTTP status of the answer, or 0 when none came.
	StatusCode int
	// ErrorCode is the OAuth2 "error" field, such as "invalid_client".
	ErrorCode string
	// ErrorDescription is the OAuth2 "error_description" field.
	ErrorDescription string
	// Detail says what was wrong with an answer that carried no OAuth2
	// error, such as an HTML error page.
	Detail string
	// Err is the underlying cause, if any.
	Err error

	// transient: the same request may pass soon (a 5xx without an OAuth2
	// error, 429, a refused, reset or closed connection); retryAfter is
	// the wait the server asked for;
	transient  bool
	retryAfter time.Duration
	// undelivered: the request surely did not reach the server's grant
	// (a refused connection, 429, 503 with Retry-After).
	undelivered bool
}

// Error describes the failure in one line.
func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("token request")
	if e.TokenURL != "" {
		fmt.Fprintf(&b, " to %s", e.TokenURL)
	}
	b.WriteString(" failed")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, ": %s", clip(e.ErrorCode, 64))
		if e.ErrorDescription != "" {
			fmt.Fprintf(&b, " (%s)", clip(e.ErrorDescription, 256))
		}
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.Err != nil {
		// A transport error can quote what the server sent, such as a
		// malformed header line of any length.
		fmt.Fprintf(&b, ": %s", clip(e.Err.Error(), 512))
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *TokenError) Unwrap() error { return e.Err }

// clip shortens s to at most n bytes of printable text, so that a hostile
// or broken server cannot flood an error message.
func clip(s string, n int) string { return redact.Clip(s, n) }
