package testserver

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TokenPath is the path of the token endpoint on a TokenServer. Being a
// constant, it is safe for concurrent use.
const TokenPath = "/oauth2/token"

const (
	defaultTokenLifetime = time.Hour
	tokenBytes           = 32
	maxRequestBody       = 1 << 20
	grantClientCreds     = "client_credentials"
	formContentType      = "application/x-www-form-urlencoded"
)

// OAuth2 error codes of RFC 6749 §5.2 that the TokenServer answers with.
const (
	oauthInvalidRequest       = "invalid_request"
	oauthInvalidClient        = "invalid_client"
	oauthUnsupportedGrantType = "unsupported_grant_type"
)

// ErrTokenInvalid is the sentinel that TokenServer.Validate wraps when it
// refuses a token; the wrapping error says why (unknown, revoked or
// expired) without repeating the token. It is safe for concurrent use.
var ErrTokenInvalid = errors.New("testserver: token invalid")

// TokenInfo describes an issued token. It is a plain value, safe for
// concurrent use once built.
type TokenInfo struct {
	// ClientID is the client the token was issued to.
	ClientID string
	// Scopes are the scopes requested with the token, in request order.
	Scopes []string
	// Audience is the audience requested with the token, or "".
	Audience string
	// ExpiresAt is when the token expires; the zero time means never.
	ExpiresAt time.Time
}

// TokenValidator decides whether a bearer token is acceptable. The
// AdminServer calls it for every protected echo call. *TokenServer
// implements it. Implementations must be safe for concurrent use.
type TokenValidator interface {
	// Validate returns what is known about token, or an error saying why
	// the token is not acceptable. The error must not contain the token.
	Validate(ctx context.Context, token string) (TokenInfo, error)
}

// RecordedRequest is what the TokenServer saw of one request, for tests
// that check the exact wire format. It is a copy, safe for concurrent use.
type RecordedRequest struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path.
	Path string
	// Header is a copy of the request headers.
	Header http.Header
	// Form is a copy of the parsed application/x-www-form-urlencoded
	// body (empty for other content types).
	Form url.Values
	// BasicAuthHeader is the raw value of the Authorization header, or "".
	BasicAuthHeader string
}

// TokenOption configures a TokenServer. Options are pure values, safe for
// concurrent use.
type TokenOption func(*tokenConfig) error

type tokenConfig struct {
	ca        *CA
	clients   map[string]string
	lifetime  time.Duration
	clock     func() time.Time
	audiences map[string]bool
}

// WithTokenTLS makes the TokenServer serve HTTPS with a leaf certificate
// signed by ca. The default is plain HTTP. It is safe for concurrent use.
func WithTokenTLS(ca *CA) TokenOption {
	return func(c *tokenConfig) error {
		if ca == nil {
			return errors.New("testserver: WithTokenTLS: nil CA")
		}
		c.ca = ca
		return nil
	}
}

// WithClient registers a confidential client. It may be repeated to
// register several clients; registering the same id twice is an error.
// Without any client every token request fails with invalid_client. It is
// safe for concurrent use.
func WithClient(id, secret string) TokenOption {
	return func(c *tokenConfig) error {
		if id == "" {
			return errors.New("testserver: WithClient: empty client id")
		}
		if _, dup := c.clients[id]; dup {
			return fmt.Errorf("testserver: WithClient: client %q registered twice", id)
		}
		c.clients[id] = secret
		return nil
	}
}

// WithLifetime sets the lifetime of issued tokens (default one hour). Zero
// means tokens never expire and responses carry no expires_in; a negative
// lifetime is an error. It is safe for concurrent use.
func WithLifetime(d time.Duration) TokenOption {
	return func(c *tokenConfig) error {
		if d < 0 {
			return fmt.Errorf("testserver: WithLifetime: negative lifetime %v", d)
		}
		c.lifetime = d
		return nil
	}
}

// WithTokenClock sets the clock used to stamp and expire tokens (default
// time.Now). The clock must be safe for concurrent use; WithTokenClock
// itself is.
func WithTokenClock(now func() time.Time) TokenOption {
	return func(c *tokenConfig) error {
		if now == nil {
			return errors.New("testserver: WithTokenClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithAllowedAudiences restricts the audience parameter to the given
// values: a request naming another audience gets 400 invalid_request. A
// request without an audience is always accepted. By default any audience
// is accepted. It is safe for concurrent use.
func WithAllowedAudiences(audiences ...string) TokenOption {
	return func(c *tokenConfig) error {
		if c.audiences == nil {
			c.audiences = make(map[string]bool, len(audiences))
		}
		for _, a := range audiences {
			c.audiences[a] = true
		}
		return nil
	}
}

type tokenRecord struct {
	info    TokenInfo
	revoked bool
}

// TokenServer is a fake OAuth2 token endpoint implementing the client
// credentials grant (RFC 6749 §4.4) at TokenPath. All its methods are safe
// for concurrent use, including the knobs, which take effect on the next
// request.
type TokenServer struct {
	srv       *httptest.Server
	clients   map[string]string // read-only after NewTokenServer
	audiences map[string]bool   // read-only after NewTokenServer; nil: any
	clock     func() time.Time

	lifetime atomic.Int64 // time.Duration
	latency  atomic.Int64 // time.Duration
	fault    atomic.Pointer[Fault]

	requests atomic.Int64
	issued   atomic.Int64

	closing   context.Context // cancelled by Close; ends hanging handlers
	stop      context.CancelFunc
	closeOnce sync.Once

	mu     sync.Mutex // guards tokens and last
	tokens map[string]*tokenRecord
	last   RecordedRequest
}

// NewTokenServer starts a token server. It is safe for concurrent use.
func NewTokenServer(opts ...TokenOption) (*TokenServer, error) {
	cfg := tokenConfig{
		clients:  make(map[string]string),
		lifetime: defaultTokenLifetime,
		clock:    time.Now,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	closing, stop := context.WithCancel(context.Background())
	s := &TokenServer{
		clients:   cfg.clients,
		audiences: cfg.audiences,
		clock:     cfg.clock,
		closing:   closing,
		stop:      stop,
		tokens:    make(map[string]*tokenRecord),
	}
	s.lifetime.Store(int64(cfg.lifetime))

	mux := http.NewServeMux()
	mux.HandleFunc(TokenPath, s.serveToken)
	s.srv = httptest.NewUnstartedServer(mux)
	// Handshake failures and aborted connections are what tests provoke;
	// they are not worth a log line.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if cfg.ca == nil {
		s.srv.Start()
		return s, nil
	}
	tlsCfg, err := cfg.ca.ServerTLSConfig()
	if err != nil {
		stop()
		s.srv.Close()
		return nil, err
	}
	s.srv.TLS = tlsCfg
	s.srv.StartTLS()
	return s, nil
}

// URL returns the base URL of the server, such as http://127.0.0.1:40123.
// It is safe for concurrent use.
func (s *TokenServer) URL() string { return s.srv.URL }

// TokenURL returns the URL of the token endpoint, URL()+TokenPath. It is
// safe for concurrent use.
func (s *TokenServer) TokenURL() string { return s.srv.URL + TokenPath }

// HTTPClient returns an HTTP client that trusts the server's certificate
// when it serves HTTPS. Close closes its idle connections. It is safe for
// concurrent use.
func (s *TokenServer) HTTPClient() *http.Client { return s.srv.Client() }

// Close ends requests held by latency or a hanging fault, shuts the server
// down and waits for its handlers to return. It may be called more than
// once. It is safe for concurrent use.
func (s *TokenServer) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		s.srv.Close()
	})
}

// SetLifetime sets the lifetime of tokens issued from now on; zero means no
// expiry and no expires_in, a negative value counts as zero. It is safe for
// concurrent use.
func (s *TokenServer) SetLifetime(d time.Duration) { s.lifetime.Store(int64(max(d, 0))) }

// SetLatency delays every later request by d before it is answered (or
// handed to the fault). The delay ends early, without an answer, when the
// client goes away or the server closes. Zero or negative disables it. It
// is safe for concurrent use.
func (s *TokenServer) SetLatency(d time.Duration) { s.latency.Store(int64(max(d, 0))) }

// SetFault installs f, which then sees every request first (after any
// latency); nil removes it. It is safe for concurrent use.
func (s *TokenServer) SetFault(f Fault) {
	if f == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&f)
}

// Requests returns the number of requests that reached the handler,
// faulted or not, since start or the last ResetCounters. It is safe for
// concurrent use.
func (s *TokenServer) Requests() int64 { return s.requests.Load() }

// Issued returns the number of tokens issued since start or the last
// ResetCounters. It is safe for concurrent use.
func (s *TokenServer) Issued() int64 { return s.issued.Load() }

// LastRequest returns a copy of the latest request that reached the
// handler; the zero value when there was none since start or the last
// ResetCounters. It is safe for concurrent use.
func (s *TokenServer) LastRequest() RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyRecorded(s.last)
}

// ResetCounters zeroes Requests and Issued and forgets LastRequest. Issued
// tokens stay valid. It is safe for concurrent use.
func (s *TokenServer) ResetCounters() {
	s.requests.Store(0)
	s.issued.Store(0)
	s.mu.Lock()
	s.last = RecordedRequest{}
	s.mu.Unlock()
}

// Validate implements TokenValidator: it returns the token's info when the
// token was issued by s, is not revoked and has not expired by the
// server's clock. Otherwise the error wraps ErrTokenInvalid. It is safe for
// concurrent use.
func (s *TokenServer) Validate(ctx context.Context, token string) (TokenInfo, error) {
	if err := ctx.Err(); err != nil {
		return TokenInfo{}, err
	}
	s.mu.Lock()
	rec, ok := s.tokens[token]
	var info TokenInfo
	revoked := false
	if ok {
		info, revoked = rec.info, rec.revoked
		info.Scopes = append([]string(nil), info.Scopes...)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return TokenInfo{}, fmt.Errorf("%w: unknown token", ErrTokenInvalid)
	case revoked:
		return TokenInfo{}, fmt.Errorf("%w: token revoked", ErrTokenInvalid)
	case !info.ExpiresAt.IsZero() && !s.clock().Before(info.ExpiresAt):
		return TokenInfo{}, fmt.Errorf("%w: token expired", ErrTokenInvalid)
	}
	return info, nil
}

// Revoke makes token invalid; unknown tokens are ignored. It is safe for
// concurrent use.
func (s *TokenServer) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.tokens[token]; ok {
		rec.revoked = true
	}
}

// RevokeAll makes every token issued so far invalid. Tokens issued later
// are not affected. It is safe for concurrent use.
func (s *TokenServer) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.tokens {
		rec.revoked = true
	}
}

func (s *TokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	// The request context also ends when the server closes, so latency and
	// hanging faults never outlive Close.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	r = r.WithContext(ctx)

	s.requests.Add(1)
	// Reading the whole body up front lets net/http notice a client that
	// goes away while the request is held.
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	formErr := parseForm(r)
	s.record(r)

	if d := time.Duration(s.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			abortConn(w)
			return
		}
	}
	if f := s.fault.Load(); f != nil && (*f)(w, r) {
		return
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, oauthInvalidRequest, "the token endpoint accepts only POST")
		return
	}
	if formErr != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, formErr.Error())
		return
	}
	clientID, status, code, desc := s.authenticate(r)
	if code != "" {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="testserver"`)
		}
		writeOAuthError(w, status, code, desc)
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case grantClientCreds:
	case "":
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, "missing grant_type")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, oauthUnsupportedGrantType, fmt.Sprintf("grant type %q is not supported", gt))
		return
	}
	audience, desc := s.audience(r.PostForm["audience"])
	if desc != "" {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, desc)
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))

	token, err := newToken()
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "cannot generate a token")
		return
	}
	lifetime := time.Duration(s.lifetime.Load())
	info := TokenInfo{ClientID: clientID, Scopes: scopes, Audience: audience}
	if lifetime > 0 {
		info.ExpiresAt = s.clock().Add(lifetime)
	}
	s.mu.Lock()
	s.tokens[token] = &tokenRecord{info: info}
	s.mu.Unlock()
	s.issued.Add(1)

	resp := tokenResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		Scope:       strings.Join(scopes, " "),
	}
	if lifetime > 0 {
		resp.ExpiresIn = int64((lifetime + time.Second - 1) / time.Second)
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticate identifies the client by HTTP Basic (id and secret
// form-url-encoded, RFC 6749 §2.3.1) or by client_id and client_secret in
// the body. It returns the client id, or an HTTP status, OAuth error code
// and description.
func (s *TokenServer) authenticate(r *http.Request) (id string, status int, code, desc string) {
	header := r.Header.Get("Authorization")
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	var secret string
	switch {
	case header != "" && formSecret != "":
		return "", http.StatusBadRequest, oauthInvalidRequest, "more than one client authentication method"
	case header != "":
		rawID, rawSecret, ok := r.BasicAuth()
		if !ok {
			return "", http.StatusUnauthorized, oauthInvalidClient, "the Authorization header is not valid HTTP Basic"
		}
		var errID, errSecret error
		id, errID = url.QueryUnescape(rawID)
		secret, errSecret = url.QueryUnescape(rawSecret)
		if errID != nil || errSecret != nil {
			return "", http.StatusUnauthorized, oauthInvalidClient, "client id or secret in HTTP Basic is not form-url-encoded"
		}
		if formID != "" && formID != id {
			return "", http.StatusBadRequest, oauthInvalidRequest, "client_id in the body does not match HTTP Basic"
		}
	case formID != "":
		id, secret = formID, formSecret
	default:
		return "", http.StatusUnauthorized, oauthInvalidClient, "no client authentication"
	}
	want, known := s.clients[id]
	if !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return "", http.StatusUnauthorized, oauthInvalidClient, "unknown client or wrong secret"
	}
	return id, 0, "", ""
}

// audience checks the audience parameter values and returns the audience,
// or a description of what is wrong.
func (s *TokenServer) audience(values []string) (string, string) {
	switch {
	case len(values) == 0:
		return "", ""
	case len(values) > 1:
		return "", "audience given more than once"
	case s.audiences != nil && values[0] != "" && !s.audiences[values[0]]:
		return "", fmt.Sprintf("audience %q is not allowed", values[0])
	}
	return values[0], ""
}

func (s *TokenServer) record(r *http.Request) {
	rec := RecordedRequest{
		Method:          r.Method,
		Path:            r.URL.Path,
		Header:          r.Header.Clone(),
		Form:            cloneValues(r.PostForm),
		BasicAuthHeader: r.Header.Get("Authorization"),
	}
	s.mu.Lock()
	s.last = rec
	s.mu.Unlock()
}

// parseForm parses a form body and reads any other body to its end.
func parseForm(r *http.Request) error {
	if r.Method != http.MethodPost {
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != formContentType {
		_, _ = io.Copy(io.Discard, r.Body)
		return fmt.Errorf("content type must be %s", formContentType)
	}
	if err := r.ParseForm(); err != nil {
		return errors.New("malformed form body")
	}
	return nil
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, oauthError{Error: code, Description: desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func copyRecorded(r RecordedRequest) RecordedRequest {
	if r.Header != nil {
		r.Header = r.Header.Clone()
	}
	if r.Form != nil {
		r.Form = cloneValues(r.Form)
	}
	return r
}
