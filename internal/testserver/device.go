package testserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths of the two endpoints of a DeviceServer. Being constants, they are
// safe for concurrent use.
const (
	// DeviceAuthorizationPath is the device authorization endpoint (RFC
	// 8628 §3.1).
	DeviceAuthorizationPath = "/oauth2/device/code"
	// DeviceTokenPath is the token endpoint, which serves the device_code
	// grant (RFC 8628 §3.4) and the refresh_token grant (RFC 6749 §6).
	DeviceTokenPath = "/oauth2/device/token"
	// DeviceVerificationPath is the page a person would open to enter the
	// user code; the DeviceServer only names it, nobody serves it.
	DeviceVerificationPath = "/device"
	// DeviceCodeGrantType is the grant_type of a device access token
	// request (RFC 8628 §3.4).
	DeviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"
)

// The answers a device access token request can get besides a token (RFC
// 8628 §3.5), as recorded in DevicePoll.Answer.
const (
	DeviceAnswerPending  = "authorization_pending"
	DeviceAnswerSlowDown = "slow_down"
	DeviceAnswerDenied   = "access_denied"
	DeviceAnswerExpired  = "expired_token"
	// DeviceAnswerToken is recorded for a poll that got a token.
	DeviceAnswerToken = "token"
)

const (
	defaultDeviceInterval     = 5 * time.Second
	defaultDeviceCodeLifetime = 10 * time.Minute
	// userCodeAlphabet has no vowels and no look-alike characters, as RFC
	// 8628 §6.1 suggests.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
)

// DevicePoll is one device access token request as the DeviceServer saw
// it. It is a plain value, safe for concurrent use.
type DevicePoll struct {
	// At is the server's clock when the request came.
	At time.Time
	// UserCode is the user code of the device code that was polled, or ""
	// for an unknown device code.
	UserCode string
	// Answer is one of the DeviceAnswer constants, or another OAuth2 error
	// code (such as invalid_grant for an unknown device code).
	Answer string
}

// DeviceOption configures a DeviceServer. Options are pure values, safe for
// concurrent use.
type DeviceOption func(*deviceConfig) error

type deviceConfig struct {
	clients      map[string]bool
	interval     time.Duration
	codeLifetime time.Duration
	lifetime     time.Duration
	clock        func() time.Time
	noRefresh    bool
}

// WithDeviceClient registers a public client (one without a secret) that
// may use the device grant. It may be repeated. Without any client every
// request fails with invalid_client.
func WithDeviceClient(id string) DeviceOption {
	return func(c *deviceConfig) error {
		if id == "" {
			return errors.New("testserver: WithDeviceClient: empty client id")
		}
		c.clients[id] = true
		return nil
	}
}

// WithDeviceInterval sets the polling interval the server announces, in
// whole seconds (default 5 s). Zero leaves "interval" out of the answer,
// so the client must pick its own; a negative or fractional interval is an
// error.
func WithDeviceInterval(d time.Duration) DeviceOption {
	return func(c *deviceConfig) error {
		if d < 0 || d%time.Second != 0 {
			return fmt.Errorf("testserver: WithDeviceInterval: %v is not a whole number of seconds", d)
		}
		c.interval = d
		return nil
	}
}

// WithDeviceCodeLifetime sets how long a device code may be polled before
// the answer is expired_token (default 10 min), by the server's clock.
func WithDeviceCodeLifetime(d time.Duration) DeviceOption {
	return func(c *deviceConfig) error {
		if d < time.Second {
			return fmt.Errorf("testserver: WithDeviceCodeLifetime: %v is shorter than a second", d)
		}
		c.codeLifetime = d
		return nil
	}
}

// WithDeviceTokenLifetime sets the lifetime of issued access tokens
// (default one hour); zero means no expiry and no expires_in.
func WithDeviceTokenLifetime(d time.Duration) DeviceOption {
	return func(c *deviceConfig) error {
		if d < 0 {
			return fmt.Errorf("testserver: WithDeviceTokenLifetime: negative lifetime %v", d)
		}
		c.lifetime = d
		return nil
	}
}

// WithDeviceClock sets the clock that stamps polls, expires device codes
// and tokens (default time.Now). It must be safe for concurrent use.
func WithDeviceClock(now func() time.Time) DeviceOption {
	return func(c *deviceConfig) error {
		if now == nil {
			return errors.New("testserver: WithDeviceClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithoutDeviceRefreshTokens makes the server issue access tokens without
// a refresh token.
func WithoutDeviceRefreshTokens() DeviceOption {
	return func(c *deviceConfig) error {
		c.noRefresh = true
		return nil
	}
}

// deviceCode is the server's state of one device authorization.
type deviceCode struct {
	clientID string
	userCode string
	scopes   []string
	audience string
	expires  time.Time
	approved bool
	denied   bool
	used     bool // a token was issued: the code is spent
}

// DeviceServer is a fake OAuth2 authorization server for the device
// authorization grant (RFC 8628): a device authorization endpoint and a
// token endpoint that serves the device_code and refresh_token grants, on
// one httptest server. A person's approval is what the test does with
// Approve or Deny. It issues random opaque tokens and implements
// TokenValidator, so an AdminServer can accept exactly its tokens. All its
// methods are safe for concurrent use, including the knobs, which take
// effect on the next request.
type DeviceServer struct {
	srv      *httptest.Server
	clients  map[string]bool // read-only after NewDeviceServer
	interval time.Duration   // read-only after NewDeviceServer
	codeLife time.Duration   // read-only after NewDeviceServer
	lifetime time.Duration   // read-only after NewDeviceServer
	refresh  bool            // read-only after NewDeviceServer
	clock    func() time.Time

	deviceFault atomic.Pointer[Fault]
	tokenFault  atomic.Pointer[Fault]
	slowDowns   atomic.Int64 // polls still to be answered slow_down

	authorizations atomic.Int64
	issued         atomic.Int64
	refreshes      atomic.Int64

	closeOnce sync.Once

	mu        sync.Mutex             // guards the fields below
	codes     map[string]*deviceCode // by device code
	byUser    map[string]string      // user code -> device code
	userCodes []string               // in issue order
	polls     []DevicePoll
	tokens    map[string]TokenInfo
	refreshTk map[string]TokenInfo // live refresh tokens
	lastAuth  RecordedRequest
}

// NewDeviceServer starts a device authorization server on loopback HTTP.
func NewDeviceServer(opts ...DeviceOption) (*DeviceServer, error) {
	cfg := deviceConfig{
		clients:      make(map[string]bool),
		interval:     defaultDeviceInterval,
		codeLifetime: defaultDeviceCodeLifetime,
		lifetime:     defaultTokenLifetime,
		clock:        time.Now,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	s := &DeviceServer{
		clients:   cfg.clients,
		interval:  cfg.interval,
		codeLife:  cfg.codeLifetime,
		lifetime:  cfg.lifetime,
		refresh:   !cfg.noRefresh,
		clock:     cfg.clock,
		codes:     make(map[string]*deviceCode),
		byUser:    make(map[string]string),
		tokens:    make(map[string]TokenInfo),
		refreshTk: make(map[string]TokenInfo),
	}
	mux := http.NewServeMux()
	mux.HandleFunc(DeviceAuthorizationPath, s.serveDeviceAuthorization)
	mux.HandleFunc(DeviceTokenPath, s.serveToken)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Start()
	return s, nil
}

// URL returns the base URL of the server. It is safe for concurrent use.
func (s *DeviceServer) URL() string { return s.srv.URL }

// DeviceAuthorizationURL returns the URL of the device authorization
// endpoint.
func (s *DeviceServer) DeviceAuthorizationURL() string { return s.srv.URL + DeviceAuthorizationPath }

// TokenURL returns the URL of the token endpoint.
func (s *DeviceServer) TokenURL() string { return s.srv.URL + DeviceTokenPath }

// VerificationURL returns the verification_uri the server announces.
func (s *DeviceServer) VerificationURL() string { return s.srv.URL + DeviceVerificationPath }

// HTTPClient returns an HTTP client for the server; Close closes its idle
// connections.
func (s *DeviceServer) HTTPClient() *http.Client { return s.srv.Client() }

// Close shuts the server down and waits for its handlers to return. It may
// be called more than once.
func (s *DeviceServer) Close() { s.closeOnce.Do(s.srv.Close) }

// SetDeviceFault installs f in front of the device authorization endpoint;
// nil removes it.
func (s *DeviceServer) SetDeviceFault(f Fault) { storeFault(&s.deviceFault, f) }

// SetTokenFault installs f in front of the token endpoint; nil removes it.
func (s *DeviceServer) SetTokenFault(f Fault) { storeFault(&s.tokenFault, f) }

// SlowDown makes the next n device polls (of any code) answer slow_down,
// whatever the code's state.
func (s *DeviceServer) SlowDown(n int) { s.slowDowns.Store(int64(max(n, 0))) }

// Approve marks the device authorization of userCode as approved by the
// person: its next poll gets a token. It fails for an unknown user code.
func (s *DeviceServer) Approve(userCode string) error {
	return s.decide(userCode, func(c *deviceCode) { c.approved = true })
}

// Deny marks the device authorization of userCode as denied: its next poll
// gets access_denied. It fails for an unknown user code.
func (s *DeviceServer) Deny(userCode string) error {
	return s.decide(userCode, func(c *deviceCode) { c.denied = true })
}

func (s *DeviceServer) decide(userCode string, f func(*deviceCode)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dc, ok := s.byUser[userCode]
	if !ok {
		return fmt.Errorf("testserver: unknown user code %q", userCode)
	}
	f(s.codes[dc])
	return nil
}

// UserCodes returns the user codes issued so far, oldest first.
func (s *DeviceServer) UserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.userCodes...)
}

// Polls returns a copy of the device polls seen so far, in order.
func (s *DeviceServer) Polls() []DevicePoll {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DevicePoll(nil), s.polls...)
}

// Authorizations returns the number of device codes issued.
func (s *DeviceServer) Authorizations() int64 { return s.authorizations.Load() }

// Issued returns the number of access tokens issued, by either grant.
func (s *DeviceServer) Issued() int64 { return s.issued.Load() }

// Refreshes returns the number of refresh_token grants that got a token.
func (s *DeviceServer) Refreshes() int64 { return s.refreshes.Load() }

// LastAuthorizationRequest returns a copy of the latest request to the
// device authorization endpoint.
func (s *DeviceServer) LastAuthorizationRequest() RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyRecorded(s.lastAuth)
}

// RevokeRefreshTokens makes every refresh token issued so far invalid: its
// next use gets invalid_grant.
func (s *DeviceServer) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refreshTk)
}

// Validate implements TokenValidator for the access tokens the server
// issued: unknown and expired tokens are refused.
func (s *DeviceServer) Validate(ctx context.Context, token string) (TokenInfo, error) {
	if err := ctx.Err(); err != nil {
		return TokenInfo{}, err
	}
	s.mu.Lock()
	info, ok := s.tokens[token]
	s.mu.Unlock()
	switch {
	case !ok:
		return TokenInfo{}, fmt.Errorf("%w: unknown token", ErrTokenInvalid)
	case !info.ExpiresAt.IsZero() && !s.clock().Before(info.ExpiresAt):
		return TokenInfo{}, fmt.Errorf("%w: token expired", ErrTokenInvalid)
	}
	info.Scopes = append([]string(nil), info.Scopes...)
	return info, nil
}

func storeFault(p *atomic.Pointer[Fault], f Fault) {
	if f == nil {
		p.Store(nil)
		return
	}
	p.Store(&f)
}

// checkRequest does what both endpoints do first: parse the form, let the
// fault answer, insist on POST and a known public client. It returns the
// client id, or "" when it has answered the request.
func (s *DeviceServer) checkRequest(w http.ResponseWriter, r *http.Request, fault *atomic.Pointer[Fault], record bool) string {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	formErr := parseForm(r)
	if record {
		s.mu.Lock()
		s.lastAuth = RecordedRequest{
			Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(),
			Form: cloneValues(r.PostForm), BasicAuthHeader: r.Header.Get("Authorization"),
		}
		s.mu.Unlock()
	}
	if f := fault.Load(); f != nil && (*f)(w, r) {
		return ""
	}
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, oauthInvalidRequest, "only POST is accepted")
		return ""
	case formErr != nil:
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, formErr.Error())
		return ""
	case r.Header.Get("Authorization") != "" || r.PostForm.Get("client_secret") != "":
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, "a public client sends no secret")
		return ""
	}
	id := r.PostForm.Get("client_id")
	if !s.clients[id] {
		writeOAuthError(w, http.StatusUnauthorized, oauthInvalidClient, "unknown client")
		return ""
	}
	return id
}

type deviceAuthResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval,omitempty"`
}

func (s *DeviceServer) serveDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	clientID := s.checkRequest(w, r, &s.deviceFault, true)
	if clientID == "" {
		return
	}
	audience := r.PostForm.Get("audience")
	device, err := newToken()
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "cannot generate a device code")
		return
	}
	dc := &deviceCode{
		clientID: clientID,
		scopes:   strings.Fields(r.PostForm.Get("scope")),
		audience: audience,
		expires:  s.clock().Add(s.codeLife),
	}
	s.mu.Lock()
	for {
		if dc.userCode, err = newUserCode(); err != nil {
			s.mu.Unlock()
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "cannot generate a user code")
			return
		}
		if _, taken := s.byUser[dc.userCode]; !taken {
			break
		}
	}
	s.codes[device] = dc
	s.byUser[dc.userCode] = device
	s.userCodes = append(s.userCodes, dc.userCode)
	s.mu.Unlock()
	s.authorizations.Add(1)

	writeJSON(w, http.StatusOK, deviceAuthResponse{
		DeviceCode:              device,
		UserCode:                dc.userCode,
		VerificationURI:         s.VerificationURL(),
		VerificationURIComplete: s.VerificationURL() + "?user_code=" + dc.userCode,
		ExpiresIn:               int64(s.codeLife / time.Second),
		Interval:                int64(s.interval / time.Second),
	})
}

func (s *DeviceServer) serveToken(w http.ResponseWriter, r *http.Request) {
	clientID := s.checkRequest(w, r, &s.tokenFault, false)
	if clientID == "" {
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case DeviceCodeGrantType:
		s.pollDevice(w, r, clientID)
	case grantRefreshToken:
		s.refreshToken(w, r, clientID)
	case "":
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, "missing grant_type")
	default:
		writeOAuthError(w, http.StatusBadRequest, oauthUnsupportedGrantType, fmt.Sprintf("grant type %q is not supported", gt))
	}
}

func (s *DeviceServer) pollDevice(w http.ResponseWriter, r *http.Request, clientID string) {
	now := s.clock()
	s.mu.Lock()
	dc, ok := s.codes[r.PostForm.Get("device_code")]
	poll := DevicePoll{At: now}
	var answer string
	switch {
	case !ok || dc.clientID != clientID || dc.used:
		answer = oauthInvalidGrant
	case s.slowDowns.Add(-1) >= 0:
		answer = DeviceAnswerSlowDown
	case dc.denied:
		answer = DeviceAnswerDenied
	case !now.Before(dc.expires):
		answer = DeviceAnswerExpired
	case !dc.approved:
		answer = DeviceAnswerPending
	default:
		answer = DeviceAnswerToken
		dc.used = true
	}
	if ok {
		poll.UserCode = dc.userCode
	}
	poll.Answer = answer
	s.polls = append(s.polls, poll)
	s.mu.Unlock()

	if answer != DeviceAnswerToken {
		writeOAuthError(w, http.StatusBadRequest, answer, "")
		return
	}
	s.issue(w, TokenInfo{ClientID: clientID, Scopes: dc.scopes, Audience: dc.audience}, false)
}

func (s *DeviceServer) refreshToken(w http.ResponseWriter, r *http.Request, clientID string) {
	rt := r.PostForm.Get("refresh_token")
	s.mu.Lock()
	info, ok := s.refreshTk[rt]
	if ok && info.ClientID == clientID {
		delete(s.refreshTk, rt) // rotated: each refresh token works once
	}
	s.mu.Unlock()
	if !ok || info.ClientID != clientID {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidGrant, "unknown, used or revoked refresh token")
		return
	}
	s.issue(w, info, true)
}

type deviceTokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// issue answers with a new access token (and refresh token) for info.
func (s *DeviceServer) issue(w http.ResponseWriter, info TokenInfo, refreshed bool) {
	access, err := newToken()
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "cannot generate a token")
		return
	}
	resp := deviceTokenResponse{AccessToken: access, TokenType: "Bearer", Scope: strings.Join(info.Scopes, " ")}
	if s.lifetime > 0 {
		info.ExpiresAt = s.clock().Add(s.lifetime)
		resp.ExpiresIn = int64((s.lifetime + time.Second - 1) / time.Second)
	}
	if s.refresh {
		if resp.RefreshToken, err = newToken(); err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "cannot generate a token")
			return
		}
	}
	s.mu.Lock()
	s.tokens[access] = info
	if resp.RefreshToken != "" {
		s.refreshTk[resp.RefreshToken] = TokenInfo{ClientID: info.ClientID, Scopes: info.Scopes, Audience: info.Audience}
	}
	s.mu.Unlock()
	s.issued.Add(1)
	if refreshed {
		s.refreshes.Add(1)
	}
	writeJSON(w, http.StatusOK, resp)
}

// newUserCode returns eight letters of userCodeAlphabet as XXXX-XXXX.
func newUserCode() (string, error) {
	var b strings.Builder
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for i := range 8 {
		if i == 4 {
			b.WriteByte('-')
		}
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b.WriteByte(userCodeAlphabet[k.Int64()])
	}
	return b.String(), nil
}
