package authenticator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// maxLifetime is the longest expires_in taken at its word; a longer one is
// treated as "no expiry given".
const maxLifetime = 10 * 365 * 24 * time.Hour

// NewClientCredentialsAuthenticator returns a Keeper for the service at
// endpoint that gets its tokens with the OAuth2 client-credentials grant
// (RFC 6749 §4.4) as clientID with clientSecret, resolving the token
// endpoint, scopes, audience and header key through store (explicit options
// win). It is the Go counterpart of flytekit's class of the same name; for
// a secret read from a file or a variable at every request, use
// ClientCredentials with SecretFromFile or SecretFromEnv, and New. It does
// no network I/O: the first call does. It fails on an empty endpoint,
// client id or secret.
func NewClientCredentialsAuthenticator(endpoint, clientID, clientSecret string, store configstore.ClientConfigStore, opts ...Option) (*Keeper, error) {
	if strings.TrimSpace(clientSecret) == "" {
		return nil, fmt.Errorf("authenticator: %w", ErrEmptySecret)
	}
	flow, err := ClientCredentials(clientID, SecretFromValue(clientSecret))
	if err != nil {
		return nil, err
	}
	return New(endpoint, store, flow, opts...)
}

// ClientCredentials returns the Flow of the OAuth2 client-credentials
// grant, through golang.org/x/oauth2/clientcredentials: HTTP Basic client
// authentication, scope space-joined, audience as a form parameter when
// set. The secret is read from secret at every request, so a rotated one is
// picked up.
func ClientCredentials(clientID string, secret SecretSource) (Flow, error) {
	if strings.TrimSpace(clientID) == "" {
		return nil, errors.New("authenticator: client id is empty")
	}
	if secret == nil {
		return nil, errors.New("authenticator: secret source is nil")
	}
	return &clientCredentials{clientID: strings.TrimSpace(clientID), secret: secret}, nil
}

type clientCredentials struct {
	clientID string
	secret   SecretSource
}

func (f *clientCredentials) flowClientID() string { return f.clientID }

// Token requests a token with the client-credentials grant. prev is not
// used: the grant has no refresh token.
func (f *clientCredentials) Token(ctx context.Context, cfg *configstore.ClientConfig, _ *oauth2.Token) (*oauth2.Token, error) {
	if cfg.TokenEndpoint == "" {
		return nil, ErrNoTokenEndpoint
	}
	secret, err := f.secret.ClientSecret(ctx)
	if err != nil {
		return nil, err
	}
	cc := clientcredentials.Config{
		ClientID:     f.clientID,
		ClientSecret: secret,
		TokenURL:     cfg.TokenEndpoint,
		Scopes:       cfg.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if cfg.Audience != "" {
		cc.EndpointParams = audienceParams(cfg)
	}
	tok, err := cc.Token(ctx)
	if err != nil {
		return nil, tokenError(ctx, redactURL(cfg.TokenEndpoint), err)
	}
	return tok, nil
}

// lifetime is how long tok is valid from now; 0 means unknown.
//
// For a token just received (received), expires_in of the answer wins.
// It is read from the raw answer because clientcredentials leaves
// Token.ExpiresIn unset, and the absolute Expiry it computes from a
// form-encoded answer overflows for huge values (a lifetime of 2^64 ns
// wraps to a fraction of a second); Expiry counts only when the answer
// had no expires_in.
//
// For a token that was not just received (one loaded from a TokenCache),
// expires_in counts from the moment it was issued, long past: its absolute
// Expiry wins when set, and expires_in counts (from now) only when it has
// none.
func lifetime(tok *oauth2.Token, now time.Time, received bool) time.Duration {
	secs, ok := expiresIn(tok)
	if !ok || (!received && !tok.Expiry.IsZero()) {
		if tok.Expiry.IsZero() {
			return 0
		}
		secs = tok.Expiry.Sub(now).Seconds()
	}
	// Written so that NaN also counts as unknown.
	if !(secs > 0 && secs <= maxLifetime.Seconds()) {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// expiresIn returns the expires_in field of tok's answer, in seconds, and
// whether there was a number there.
func expiresIn(tok *oauth2.Token) (float64, bool) {
	if tok.ExpiresIn != 0 {
		return float64(tok.ExpiresIn), true
	}
	switch v := tok.Extra("expires_in").(type) {
	case float64: // a JSON number
		return v, true
	case int64: // a form-encoded integer
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case string: // a JSON string, as some servers send
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f, err == nil
	}
	return 0, false
}

// tokenError turns an error of x/oauth2 into a *TokenError that carries no
// body, secret or token.
func tokenError(ctx context.Context, tokenURL string, err error) error {
	te := &TokenError{TokenURL: tokenURL}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			te.StatusCode = re.Response.StatusCode
			te.retryAfter = retryAfter(re.Response.Header.Get("Retry-After"))
		}
		te.ErrorCode = re.ErrorCode
		te.transient = te.StatusCode == http.StatusTooManyRequests || (te.StatusCode >= 500 && re.ErrorCode == "")
		te.undelivered = te.StatusCode == http.StatusTooManyRequests || (te.StatusCode == http.StatusServiceUnavailable && te.retryAfter > 0)
		te.ErrorDescription = re.ErrorDescription
		if te.ErrorCode == "" {
			ct := ""
			if re.Response != nil {
				ct, _, _ = mime.ParseMediaType(re.Response.Header.Get("Content-Type"))
			}
			te.Detail = fmt.Sprintf("the answer is not an OAuth2 error (Content-Type %q, %d bytes)", clip(ct, 64), len(re.Body))
		}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		te.Detail = "no answer within the token timeout"
		te.Err = context.DeadlineExceeded
	default:
		// A *url.Error repeats the whole URL, query included; TokenURL
		// already names the endpoint without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		te.undelivered = errors.Is(err, syscall.ECONNREFUSED)
		te.transient = te.undelivered || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
		if errors.Is(err, io.EOF) {
			// Not wrapped (%v): a stream's caller that sees errors.Is(err,
			// io.EOF) would take the failure for a clean end of the stream.
			err = fmt.Errorf("the connection closed before an answer came: %v", err)
		}
		te.Err = err
	}
	return te
}

// retryAfter reads a Retry-After header in seconds (RFC 9110 §10.2.3),
// up to ten; 0 for none, a date, or nonsense. A longer wait is not worth
// holding a call for: the request fails at once instead.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 10)) * time.Second
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// validHeaderKey reports whether k is a usable lower-case metadata key for
// a text value.
func validHeaderKey(k string) bool {
	if k == "" || strings.HasSuffix(k, "-bin") || strings.HasPrefix(k, "grpc-") {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v can be sent as a gRPC metadata value:
// printable ASCII only, as grpc-go checks.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", clip(redactURL(s), 200))
	}
	return nil
}

// redactURL hides the user information and query of a URL for logs and
// errors.
func redactURL(s string) string { return redact.URL(s) }
