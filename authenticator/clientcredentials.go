package authenticator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/flyteauth/grpcauth/configstore"
)

// maxLifetime is the longest expires_in taken at its word; a longer one is
// treated as "no expiry given".
const maxLifetime = 10 * 365 * 24 * time.Hour

// ClientCredentialsAuthenticator gets access tokens with the OAuth2
// client-credentials grant and keeps the current one ready for the
// interceptors. It is safe for concurrent use.
//
// The token endpoint, scopes, audience and header key come from the options
// when given, else from the config store, which is read at the first refresh
// (never at construction). While a token is valid,
// FetchGRPCCallAuthMetadata is a lock-free load; once the token enters its
// refresh margin, one background refresh starts and callers go on with the
// still-valid token. Concurrent refreshes share one token request.
type ClientCredentialsAuthenticator struct {
	endpoint string
	clientID string
	store    configstore.ClientConfigStore
	opts     options
	secret   SecretSource
	http     *http.Client

	current atomic.Pointer[credentials] // nil until the first token
	group   singleflight.Group          // one token request at a time; constant key
	stats   statCounters
}

// credentials is one token, ready to attach. It is immutable once stored,
// but for its background-refresh gate.
type credentials struct {
	key, value string
	expiry     time.Time // zero: unknown, used until rejected
	refreshAt  time.Time // zero: no proactive refresh
	// nextBackground is the unix-nano time before which no background
	// refresh starts; math.MaxInt64 while one runs.
	nextBackground atomic.Int64
}

// NewClientCredentialsAuthenticator returns an authenticator for the
// service at endpoint (used in logs and errors) that authenticates as
// clientID with clientSecret, resolving the rest of its configuration
// through store. It does no network I/O: the first RefreshCredentials does.
// It fails on an empty endpoint, client id or secret (unless
// WithSecretSource is given), an unreadable CA file, an unparsable proxy
// URL, or WithHTTPClient combined with TLS or proxy options.
func NewClientCredentialsAuthenticator(endpoint, clientID, clientSecret string, store configstore.ClientConfigStore, opts ...Option) (*ClientCredentialsAuthenticator, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil { // a nil option is no option, not a panic
			opt(&o)
		}
	}
	switch {
	case strings.TrimSpace(endpoint) == "":
		return nil, errors.New("authenticator: endpoint is empty")
	case strings.TrimSpace(clientID) == "":
		return nil, errors.New("authenticator: client id is empty")
	case store == nil:
		return nil, errors.New("authenticator: config store is nil")
	}
	secret := o.secret
	if secret == nil {
		s := strings.TrimSpace(clientSecret)
		if s == "" {
			return nil, fmt.Errorf("authenticator: %w", ErrEmptySecret)
		}
		secret = staticSecret(s)
	}
	if o.headerSet && !validHeaderKey(o.headerKey) {
		return nil, fmt.Errorf("authenticator: WithHeaderKey: %q is not a valid gRPC metadata key", o.headerKey)
	}
	if o.tokenURL != "" {
		if err := checkURL(o.tokenURL); err != nil {
			return nil, fmt.Errorf("authenticator: WithTokenURL: %w", err)
		}
	}
	hc, err := newHTTPClient(&o)
	if err != nil {
		return nil, fmt.Errorf("authenticator: %w", err)
	}
	if o.skipVerify {
		o.logger.Warn("authenticator: TLS verification of the token endpoint is off")
	}
	return &ClientCredentialsAuthenticator{
		endpoint: endpoint,
		clientID: clientID,
		store:    store,
		opts:     o,
		secret:   secret,
		http:     hc,
	}, nil
}

// FetchGRPCCallAuthMetadata returns the header key and "Bearer <token>" of
// the current token; ok is false before the first token. While the token is
// valid this is a lock-free load, and it starts a background refresh once
// the token is within its refresh margin. Only a token that has really
// expired makes the caller wait for a new one (bounded by ctx); if that
// fails, the expired value is returned and the server's rejection drives the
// retry.
func (a *ClientCredentialsAuthenticator) FetchGRPCCallAuthMetadata(ctx context.Context) (key, value string, ok bool) {
	c := a.current.Load()
	if c == nil {
		return "", "", false
	}
	if c.refreshAt.IsZero() {
		return c.key, c.value, true
	}
	now := a.opts.now()
	if now.Before(c.refreshAt) {
		return c.key, c.value, true
	}
	if now.Before(c.expiry) {
		a.startBackgroundRefresh(c, now)
		return c.key, c.value, true
	}
	if err := a.refresh(ctx, c, causeExpired); err == nil {
		if n := a.current.Load(); n != nil {
			return n.key, n.value, true
		}
	}
	return c.key, c.value, true
}

// RefreshCredentials requests a new token, or joins the request already in
// flight. It waits until the request ends or ctx is done; a caller that
// stops waiting does not cancel the request for the others, which is bounded
// by the token timeout.
func (a *ClientCredentialsAuthenticator) RefreshCredentials(ctx context.Context) error {
	return a.refresh(ctx, nil, causeExplicit)
}

// RefreshRejected requests a new token if value is still the current one
// (or no token is held yet), and returns nil at once if it has already been
// replaced. The interceptors call it after the server rejected value.
func (a *ClientCredentialsAuthenticator) RefreshRejected(ctx context.Context, value string) error {
	c := a.current.Load()
	if c != nil && c.value != value {
		return nil
	}
	return a.refresh(ctx, c, causeRejected)
}

type refreshCause int

const (
	causeExplicit refreshCause = iota
	causeRejected
	causeExpired
	causeProactive
)

// refresh runs one token request for all concurrent callers. With a
// non-nil stale, the request is skipped if stale is no longer current by the
// time the flight starts.
//
// A caller may join a flight that another caller started for an older
// token, which ends without a request. When that happens and the caller's
// own token is still current (or it asked for a new one outright, stale
// nil), it goes round again rather than return without a new token.
func (a *ClientCredentialsAuthenticator) refresh(ctx context.Context, stale *credentials, cause refreshCause) error {
	for {
		ch := a.group.DoChan("token", func() (any, error) {
			if stale != nil && a.current.Load() != stale {
				return skippedFlight{}, nil
			}
			a.stats.count(cause)
			return nil, a.fetch(context.WithoutCancel(ctx))
		})
		select {
		case r := <-ch:
			if _, skipped := r.Val.(skippedFlight); skipped && (stale == nil || a.current.Load() == stale) {
				continue
			}
			return r.Err
		case <-ctx.Done():
			return fmt.Errorf("authenticator: waiting for a token: %w", context.Cause(ctx))
		}
	}
}

// skippedFlight is the result of a flight that made no token request
// because the token it was to replace had been replaced already.
type skippedFlight struct{}

func (a *ClientCredentialsAuthenticator) startBackgroundRefresh(c *credentials, now time.Time) {
	next := c.nextBackground.Load()
	if now.UnixNano() < next || !c.nextBackground.CompareAndSwap(next, math.MaxInt64) {
		return
	}
	go func() {
		if err := a.refresh(context.Background(), c, causeProactive); err != nil {
			// Try again after a pause, not on every call.
			c.nextBackground.Store(a.opts.now().Add(a.opts.retryPause).UnixNano())
		}
	}()
}

// fetch resolves the client config and requests a token. Its errors are
// prefixed with "authenticator: ".
func (a *ClientCredentialsAuthenticator) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.opts.timeout)
	defer cancel()
	a.stats.requests.Add(1)
	err := a.fetchToken(ctx)
	if err != nil {
		a.stats.failures.Add(1)
		a.opts.logger.Warn("authenticator: token refresh failed", "endpoint", a.endpoint, "error", err)
		return fmt.Errorf("authenticator: %w", err)
	}
	return nil
}

func (a *ClientCredentialsAuthenticator) fetchToken(ctx context.Context) error {
	cfg, err := a.store.GetClientConfig(ctx)
	if err != nil {
		return fmt.Errorf("resolving client config: %w", err)
	}
	tokenURL := firstNonEmpty(a.opts.tokenURL, cfg.TokenEndpoint)
	if tokenURL == "" {
		return ErrNoTokenEndpoint
	}
	scopes := cfg.Scopes
	if a.opts.scopesSet {
		scopes = a.opts.scopes
	}
	audience := firstNonEmpty(a.opts.audience, cfg.Audience)
	key := strings.ToLower(firstNonEmpty(a.opts.headerKey, cfg.HeaderKey, DefaultHeaderKey))
	if !validHeaderKey(key) {
		return fmt.Errorf("the config store's header key %q is not a valid gRPC metadata key", clip(key, 64))
	}
	secret, err := a.secret.ClientSecret(ctx)
	if err != nil {
		return err
	}
	cc := clientcredentials.Config{
		ClientID:     a.clientID,
		ClientSecret: secret,
		TokenURL:     tokenURL,
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if audience != "" {
		cc.EndpointParams = url.Values{"audience": {audience}}
	}
	a.opts.logger.Debug("authenticator: requesting token", "endpoint", a.endpoint, "token_url", redactURL(tokenURL), "scopes", scopes, "audience", audience)
	start := a.opts.now()
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, a.http))
	if err != nil {
		return tokenError(ctx, redactURL(tokenURL), a.opts.timeout, err)
	}
	if tt := tok.TokenType; tt != "" && !strings.EqualFold(tt, "bearer") {
		// A client-credentials token is a bearer token; flytekit and
		// FlyteAdmin know no other kind. A server that says otherwise is
		// answered the way they would: the token goes out as Bearer.
		a.opts.logger.Warn("authenticator: token_type is not Bearer; sending the token as a Bearer token", "endpoint", a.endpoint, "token_type", clip(tt, 32))
	}
	c := &credentials{key: key, value: "Bearer " + tok.AccessToken}
	if !validHeaderValue(c.value) {
		// gRPC refuses such a value with codes.Internal on every call, which
		// no refresh would follow: the client would be stuck with it.
		return &TokenError{TokenURL: redactURL(tokenURL), Detail: "the access_token or token_type of the answer holds characters a gRPC header cannot carry"}
	}
	if life := lifetime(tok); life > 0 {
		c.expiry = start.Add(life)
		c.refreshAt = c.expiry.Add(-a.margin(life))
	}
	a.current.Store(c)
	a.opts.logger.Debug("authenticator: got token", "endpoint", a.endpoint, "expiry", c.expiry)
	return nil
}

// lifetime is how long tok is valid, from the expires_in of the answer; 0
// means unknown. expires_in is read from the raw answer because
// clientcredentials leaves Token.ExpiresIn unset, and the absolute Expiry it
// computes from a form-encoded answer overflows for huge values (a lifetime
// of 2^64 ns wraps to a fraction of a second).
func lifetime(tok *oauth2.Token) time.Duration {
	secs, ok := expiresIn(tok)
	if !ok {
		if tok.Expiry.IsZero() {
			return 0
		}
		secs = time.Until(tok.Expiry).Seconds()
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

// margin is how long before expiry the background refresh starts.
func (a *ClientCredentialsAuthenticator) margin(life time.Duration) time.Duration {
	m := a.opts.margin
	if m == 0 {
		m = min(life/5, DefaultMaxRefreshMargin)
	}
	return min(m, life/2)
}

// tokenError turns an error of x/oauth2 into a *TokenError that carries no
// body, secret or token.
func tokenError(ctx context.Context, tokenURL string, timeout time.Duration, err error) error {
	te := &TokenError{TokenURL: tokenURL}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			te.StatusCode = re.Response.StatusCode
		}
		te.ErrorCode = re.ErrorCode
		te.ErrorDescription = re.ErrorDescription
		if te.ErrorCode == "" {
			ct := ""
			if re.Response != nil {
				ct, _, _ = mime.ParseMediaType(re.Response.Header.Get("Content-Type"))
			}
			te.Detail = fmt.Sprintf("the answer is not an OAuth2 error (Content-Type %q, %d bytes)", clip(ct, 64), len(re.Body))
		}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		te.Detail = fmt.Sprintf("no answer within the token timeout of %s", timeout)
		te.Err = context.DeadlineExceeded
	default:
		// A *url.Error repeats the whole URL, query included; TokenURL
		// already names the endpoint without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, io.EOF) {
			// Not wrapped (%v): a stream's caller that sees errors.Is(err,
			// io.EOF) would take the failure for a clean end of the stream.
			err = fmt.Errorf("the connection closed before an answer came: %v", err)
		}
		te.Err = err
	}
	return te
}

// CloseIdleConnections closes the idle connections of the HTTP client that
// makes the token requests. The authenticator stays usable: the next request
// opens a new connection. It is safe for concurrent use.
func (a *ClientCredentialsAuthenticator) CloseIdleConnections() {
	a.http.CloseIdleConnections()
}

// String describes the authenticator without its secret.
func (a *ClientCredentialsAuthenticator) String() string {
	return fmt.Sprintf("ClientCredentialsAuthenticator{endpoint: %q, clientID: %q, secret: %v}", a.endpoint, a.clientID, a.secret)
}

// GoString is String, so %#v does not print the secret either.
func (a *ClientCredentialsAuthenticator) GoString() string { return a.String() }

// Stats are counters of an authenticator's token requests, for reports and
// tests.
type Stats struct {
	// TokenRequests counts token fetches started, failed ones included;
	// a fetch that fails in the config store sends no HTTP request.
	TokenRequests int64
	// Failures counts token fetches that failed.
	Failures int64
	// Rejected counts refreshes started because the server rejected the
	// current token.
	Rejected int64
	// Expired counts refreshes a caller waited for because the token had
	// expired.
	Expired int64
	// Proactive counts refreshes started in the background before expiry.
	Proactive int64
	// Explicit counts refreshes started by RefreshCredentials.
	Explicit int64
}

type statCounters struct {
	requests, failures                       atomic.Int64
	rejected, expired, proactive, explicitly atomic.Int64
}

func (s *statCounters) count(c refreshCause) {
	switch c {
	case causeRejected:
		s.rejected.Add(1)
	case causeExpired:
		s.expired.Add(1)
	case causeProactive:
		s.proactive.Add(1)
	default:
		s.explicitly.Add(1)
	}
}

// Stats returns the counters so far. It is safe for concurrent use.
func (a *ClientCredentialsAuthenticator) Stats() Stats {
	s := &a.stats
	return Stats{
		TokenRequests: s.requests.Load(),
		Failures:      s.failures.Load(),
		Rejected:      s.rejected.Load(),
		Expired:       s.expired.Load(),
		Proactive:     s.proactive.Load(),
		Explicit:      s.explicitly.Load(),
	}
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

// redactURL drops user information, query and fragment from a URL for
// logs and errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

var (
	_ Authenticator      = (*ClientCredentialsAuthenticator)(nil)
	_ RejectionRefresher = (*ClientCredentialsAuthenticator)(nil)
)
