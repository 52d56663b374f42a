package testserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AuthorizePath is the path of the authorization endpoint on an
// AuthorizationServer (Hydra's path). Being a constant, it is safe for
// concurrent use.
const AuthorizePath = "/oauth2/auth"

// RevokePath is where an AuthorizationServer revokes tokens (RFC 7009);
// its OpenID Connect discovery document, at
// /.well-known/openid-configuration, names it.
const RevokePath = "/oauth2/revoke"

const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	oauthInvalidGrant      = "invalid_grant"
	oauthAccessDenied      = "access_denied"
	// codeLifetime is how long an authorization code may be exchanged.
	codeLifetime = time.Minute
)

// Consent is what the person at the browser answers an AuthorizationServer.
type Consent int32

// The answers an AuthorizationServer can be set to give with SetConsent.
const (
	// ConsentApprove redirects with an authorization code (the default).
	ConsentApprove Consent = iota
	// ConsentDeny redirects with error=access_denied, as when the person
	// refuses.
	ConsentDeny
)

// AuthorizeOption configures an AuthorizationServer. Options are pure
// values, safe for concurrent use.
type AuthorizeOption func(*authorizeConfig) error

type authorizeConfig struct {
	clients  map[string][]string // public client id -> redirect URIs
	lifetime time.Duration
	clock    func() time.Time
	iss      string
}

// WithResponseIssuer makes every authorization response carry iss=issuer
// (RFC 9207), as a server that advertises
// authorization_response_iss_parameter_supported does.
func WithResponseIssuer(issuer string) AuthorizeOption {
	return func(c *authorizeConfig) error {
		c.iss = issuer
		return nil
	}
}

// WithPublicClient registers a public client (no secret, PKCE required)
// and the redirect URIs it may use, compared exactly. It may be repeated
// for several clients.
func WithPublicClient(id string, redirectURIs ...string) AuthorizeOption {
	return func(c *authorizeConfig) error {
		if id == "" || len(redirectURIs) == 0 {
			return errors.New("testserver: WithPublicClient: a client needs an id and a redirect URI")
		}
		if _, dup := c.clients[id]; dup {
			return fmt.Errorf("testserver: WithPublicClient: client %q registered twice", id)
		}
		c.clients[id] = slices.Clone(redirectURIs)
		return nil
	}
}

// WithAccessLifetime sets the lifetime of issued access tokens (default
// one hour); zero means no expiry and no expires_in.
func WithAccessLifetime(d time.Duration) AuthorizeOption {
	return func(c *authorizeConfig) error {
		if d < 0 {
			return fmt.Errorf("testserver: WithAccessLifetime: negative lifetime %v", d)
		}
		c.lifetime = d
		return nil
	}
}

// WithAuthorizeClock sets the clock that stamps and expires access tokens
// (default time.Now). It must be safe for concurrent use.
func WithAuthorizeClock(now func() time.Time) AuthorizeOption {
	return func(c *authorizeConfig) error {
		if now == nil {
			return errors.New("testserver: WithAuthorizeClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// grant is what an authorization code or a refresh token stands for.
type grant struct {
	clientID    string
	redirectURI string
	challenge   string // S256 code challenge; codes only
	scopes      []string
	audience    string
	expires     time.Time // codes only
	// family names the login a refresh token belongs to: every token
	// rotated from one authorization code.
	family string
}

// AuthorizationServer is a fake OAuth2 server for public clients: an
// authorization endpoint (RFC 6749 §4.1) that requires PKCE with S256 (RFC
// 7636) and answers at once as the configured Consent says, and a token
// endpoint with the authorization_code and refresh_token grants. Refresh
// tokens rotate: each use returns a new one and invalidates the old, and a
// refresh token used a second time revokes its whole login, every refresh
// and access token rotated from the same authorization code (RFC 9700
// §4.14.2, as Hydra, Okta and Auth0 do). It implements TokenValidator for
// the AdminServer. All its methods are safe for concurrent use.
type AuthorizationServer struct {
	srv      *httptest.Server
	clients  map[string][]string // read-only after NewAuthorizationServer
	lifetime time.Duration
	clock    func() time.Time
	iss      string // the iss of every authorization response; "" for none

	consent atomic.Int32
	fault   atomic.Pointer[Fault]

	authorizations atomic.Int64
	tokenRequests  atomic.Int64
	codeGrants     atomic.Int64
	refreshGrants  atomic.Int64
	reuses         atomic.Int64
	revocations    atomic.Int64

	mu        sync.Mutex // guards the maps and lastAuth
	codes     map[string]grant
	refresh   map[string]grant
	tokens    map[string]TokenInfo
	families  map[string]string // access token and used refresh token: its login
	lastAuth  url.Values
	lastToken url.Values
}

// NewAuthorizationServer starts an authorization server on loopback HTTP.
func NewAuthorizationServer(opts ...AuthorizeOption) (*AuthorizationServer, error) {
	cfg := authorizeConfig{clients: make(map[string][]string), lifetime: defaultTokenLifetime, clock: time.Now}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	s := &AuthorizationServer{
		clients:  cfg.clients,
		lifetime: cfg.lifetime,
		clock:    cfg.clock,
		iss:      cfg.iss,
		codes:    make(map[string]grant),
		refresh:  make(map[string]grant),
		tokens:   make(map[string]TokenInfo),
		families: make(map[string]string),
	}
	mux := http.NewServeMux()
	mux.HandleFunc(AuthorizePath, s.serveAuthorize)
	mux.HandleFunc(TokenPath, s.serveToken)
	mux.HandleFunc("POST "+RevokePath, s.serveRevoke)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.serveDiscovery)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Start()
	return s, nil
}

// AuthorizeURL returns the URL of the authorization endpoint.
func (s *AuthorizationServer) AuthorizeURL() string { return s.srv.URL + AuthorizePath }

// TokenURL returns the URL of the token endpoint.
func (s *AuthorizationServer) TokenURL() string { return s.srv.URL + TokenPath }

// Close shuts the server down and waits for its handlers. It may be called
// more than once.
func (s *AuthorizationServer) Close() { s.srv.Close() }

// SetConsent sets what later authorization requests are answered.
func (s *AuthorizationServer) SetConsent(c Consent) { s.consent.Store(int32(c)) }

// SetTokenFault installs f in front of the token endpoint (nil removes
// it), as TokenServer.SetFault does.
func (s *AuthorizationServer) SetTokenFault(f Fault) {
	if f == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&f)
}

// Authorizations returns how many requests reached the authorization
// endpoint: how many times a browser was sent there.
func (s *AuthorizationServer) Authorizations() int64 { return s.authorizations.Load() }

// TokenRequests returns how many requests reached the token endpoint.
func (s *AuthorizationServer) TokenRequests() int64 { return s.tokenRequests.Load() }

// CodeGrants returns how many codes were exchanged for tokens.
func (s *AuthorizationServer) CodeGrants() int64 { return s.codeGrants.Load() }

// RefreshGrants returns how many refresh tokens were exchanged for tokens.
func (s *AuthorizationServer) RefreshGrants() int64 { return s.refreshGrants.Load() }

// LastAuthorization returns a copy of the query of the latest request to
// the authorization endpoint, or nil.
func (s *AuthorizationServer) LastAuthorization() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastAuth == nil {
		return nil
	}
	return cloneValues(s.lastAuth)
}

// LastTokenRequest returns the form of the last token request, or nil.
func (s *AuthorizationServer) LastTokenRequest() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastToken == nil {
		return nil
	}
	return cloneValues(s.lastToken)
}

// RevokeRefreshTokens makes every refresh token issued so far invalid, so
// that using one answers invalid_grant.
func (s *AuthorizationServer) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

// Validate implements TokenValidator for the access tokens s issued.
func (s *AuthorizationServer) Validate(ctx context.Context, token string) (TokenInfo, error) {
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
	info.Scopes = slices.Clone(info.Scopes)
	return info, nil
}

// serveAuthorize answers at once, as a browser session that is logged in
// and consents (or refuses) would: errors in client_id or redirect_uri get
// an error page (never a redirect, RFC 6749 §4.1.2.1), every other outcome
// a redirect to the client.
func (s *AuthorizationServer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	s.authorizations.Add(1)
	q := r.URL.Query()
	s.mu.Lock()
	s.lastAuth = cloneValues(q)
	s.mu.Unlock()

	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	uris, known := s.clients[clientID]
	if !known || !slices.Contains(uris, redirectURI) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<p>unknown client %s or redirect URI %s</p>", html.EscapeString(clientID), html.EscapeString(redirectURI))
		return
	}
	back, _ := url.Parse(redirectURI)
	answer := func(v url.Values) {
		v.Set("state", q.Get("state"))
		if s.iss != "" {
			v.Set("iss", s.iss)
		}
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	}
	fail := func(code, desc string) { answer(url.Values{"error": {code}, "error_description": {desc}}) }
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail(oauthInvalidRequest, "PKCE with code_challenge_method=S256 is required")
		return
	case Consent(s.consent.Load()) == ConsentDeny:
		// Markup in the description lets tests check that the
		// client escapes it.
		fail(oauthAccessDenied, "The resource owner denied the request <script>")
		return
	}
	code, err := newToken()
	if err != nil {
		fail("server_error", "cannot generate a code")
		return
	}
	s.mu.Lock()
	s.codes[code] = grant{
		clientID:    clientID,
		redirectURI: redirectURI,
		challenge:   q.Get("code_challenge"),
		scopes:      strings.Fields(q.Get("scope")),
		audience:    q.Get("audience"),
		expires:     time.Now().Add(codeLifetime),
	}
	s.mu.Unlock()
	answer(url.Values{"code": {code}})
}

func (s *AuthorizationServer) serveToken(w http.ResponseWriter, r *http.Request) {
	s.tokenRequests.Add(1)
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	formErr := parseForm(r)
	if f := s.fault.Load(); f != nil && (*f)(w, r) {
		return
	}
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, oauthInvalidRequest, "the token endpoint accepts only POST")
		return
	case formErr != nil:
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, formErr.Error())
		return
	case r.Header.Get("Authorization") != "" || r.PostForm.Get("client_secret") != "":
		writeOAuthError(w, http.StatusUnauthorized, oauthInvalidClient, "public clients send no secret")
		return
	}
	s.mu.Lock()
	s.lastToken = cloneValues(r.PostForm)
	s.mu.Unlock()
	clientID := r.PostForm.Get("client_id")
	if _, known := s.clients[clientID]; !known {
		writeOAuthError(w, http.StatusUnauthorized, oauthInvalidClient, "unknown client")
		return
	}
	var g grant
	var desc string
	switch gt := r.PostForm.Get("grant_type"); gt {
	case grantAuthorizationCode:
		g, desc = s.redeemCode(clientID, r.PostForm)
		if desc == "" {
			s.codeGrants.Add(1)
		}
	case grantRefreshToken:
		g, desc = s.redeemRefresh(clientID, r.PostForm.Get("refresh_token"))
		if desc == "" {
			s.refreshGrants.Add(1)
		}
	default:
		writeOAuthError(w, http.StatusBadRequest, oauthUnsupportedGrantType, fmt.Sprintf("grant type %q is not supported", gt))
		return
	}
	if desc != "" {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidGrant, desc)
		return
	}
	s.issue(w, g)
}

// redeemCode checks and uses up an authorization code.
func (s *AuthorizationServer) redeemCode(clientID string, form url.Values) (grant, string) {
	code := form.Get("code")
	s.mu.Lock()
	g, ok := s.codes[code]
	delete(s.codes, code) // a code is used once, even by a failed attempt
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	switch {
	case !ok:
		return grant{}, "unknown or used authorization code"
	case time.Now().After(g.expires):
		return grant{}, "the authorization code expired"
	case g.clientID != clientID:
		return grant{}, "the code was issued to another client"
	case g.redirectURI != form.Get("redirect_uri"):
		return grant{}, "redirect_uri differs from the authorization request"
	case subtle.ConstantTimeCompare([]byte(want), []byte(g.challenge)) != 1:
		return grant{}, "the code_verifier does not match the code_challenge"
	}
	return g, ""
}

// redeemRefresh checks and uses up a refresh token. One used before
// revokes its login.
func (s *AuthorizationServer) redeemRefresh(clientID, token string) (grant, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok {
		if family, used := s.families["used:"+token]; used {
			s.reuses.Add(1)
			s.revokeFamily(family)
			return grant{}, "the refresh token was used before: the whole login is revoked"
		}
		return grant{}, "unknown, used or revoked refresh token"
	}
	if g.clientID != clientID {
		return grant{}, "the refresh token was issued to another client"
	}
	delete(s.refresh, token)
	s.families["used:"+token] = g.family
	return g, ""
}

// issue answers with a new access token and a new refresh token for g.
func (s *AuthorizationServer) issue(w http.ResponseWriter, g grant) {
	access, err1 := newToken()
	refresh, err2 := newToken()
	if err1 != nil || err2 != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "cannot generate a token")
		return
	}
	info := TokenInfo{ClientID: g.clientID, Scopes: g.scopes, Audience: g.audience}
	if s.lifetime > 0 {
		info.ExpiresAt = s.clock().Add(s.lifetime)
	}
	g.challenge, g.expires = "", time.Time{}
	if g.family == "" {
		g.family = refresh // a new login
	}
	s.mu.Lock()
	s.tokens[access] = info
	s.families[access] = g.family
	s.refresh[refresh] = g
	s.mu.Unlock()
	resp := codeTokenResponse{
		tokenResponse: tokenResponse{AccessToken: access, TokenType: "Bearer", Scope: strings.Join(g.scopes, " ")},
		RefreshToken:  refresh,
	}
	if s.lifetime > 0 {
		resp.ExpiresIn = int64((s.lifetime + time.Second - 1) / time.Second)
	}
	writeJSON(w, http.StatusOK, resp)
}
