package authenticator

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
)

const (
	// defaultRedirectURI is the redirect URI of a PKCE login when neither
	// PKCEConfig nor the config store names one: flyteidl's default.
	defaultRedirectURI = "http://localhost:53593/callback"
	// defaultLoginTimeout bounds a whole browser login: flyteidl's
	// pkceConfig.timeout.
	defaultLoginTimeout = 2 * time.Minute

	// callbackShutdown bounds the wait for the callback page to reach the
	// browser once the login is decided.
	callbackShutdown = 2 * time.Second
	// stateBytes is the entropy of the state parameter.
	stateBytes = 32
)

// Sentinel errors of the interactive logins, matched with errors.Is.
var (
	// ErrStateMismatch reports a redirect whose state parameter is not the
	// one this login sent: an answer to another login, or a forged one.
	ErrStateMismatch = errors.New("the redirect's state does not match this login (an answer to another login, or a forged request)")
	// ErrNoClientID reports that neither the flow's config nor the config
	// store gave the public client id.
	ErrNoClientID = errors.New("no client id: none was configured and the config store advertised none")
)

// errLoginFinished answers a redirect that comes after the login was
// decided.
var errLoginFinished = errors.New("this login has already finished")

// AuthorizationError is an error the authorization server sent for a
// login: to the redirect URI of a browser login (RFC 6749 §4.1.2.1), such
// as access_denied when the person refused consent, or to a device login's
// poll (RFC 8628 §3.5: access_denied, expired_token).
type AuthorizationError struct {
	// ErrorCode is the OAuth2 "error" parameter.
	ErrorCode string
	// ErrorDescription is the "error_description" parameter, or "".
	ErrorDescription string
}

// Error describes the refusal in one line.
func (e *AuthorizationError) Error() string {
	s := "the authorization server refused the login: " + clip(e.ErrorCode, 64)
	if e.ErrorDescription != "" {
		s += " (" + clip(e.ErrorDescription, 256) + ")"
	}
	return s
}

// PKCEConfig configures a browser login. Every field is optional but
// Prompter.
type PKCEConfig struct {
	// ClientID is the public client id; default: the config store's
	// (GetPublicClientConfig).
	ClientID string
	// RedirectURI must be http:// on a loopback host with an explicit
	// port: the login listens there. Default: the store's, else
	// http://localhost:53593/callback (flyteidl's).
	RedirectURI string
	// AuthorizationEndpoint wins over the store's (GetOAuth2Metadata).
	AuthorizationEndpoint string
	// Timeout bounds a whole login, from showing the URL to holding the
	// token. Default: 2 minutes (flyteidl's pkceConfig.timeout).
	Timeout time.Duration
	// Prompter shows the login to the person, such as loginui.Terminal.
	Prompter Prompter
	// AuthParams are extra parameters of the authorization request
	// (flytekit's request_auth_code_params), such as login_hint or prompt.
	// They cannot replace the ones the flow sets (response_type,
	// client_id, redirect_uri, scope, state, code_challenge,
	// code_challenge_method). Without a prompt of their own, a request for
	// offline_access asks prompt=consent (OpenID Connect Core §11: a
	// certified provider issues no refresh token otherwise).
	AuthParams url.Values
}

// flowParams are the authorization request's parameters the flow sets.
var flowParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"}

// pkceFlow is the browser login of a public client: the authorization code
// grant with PKCE (RFC 6749 §4.1, RFC 7636 with S256), flytekit's
// PKCEAuthenticator.
type pkceFlow struct {
	c PKCEConfig
}

// NewPKCEFlow returns the browser login of a public client: the
// authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 with S256),
// flytekit's PKCEAuthenticator and Flyte's authType Pkce. It shows the
// authorization URL through c.Prompter (which opens a browser where it
// can), receives the code on a loopback listener at the redirect URI, and
// exchanges it for a token. When the previous token has a refresh token, it
// uses that first and asks the person again only when the server answers
// invalid_grant.
//
// Give it to a Keeper with a TokenCache so that a login outlives the
// process. It is safe for concurrent use, but two logins at once compete
// for the redirect port: the Keeper runs one at a time. It fails on a
// missing Prompter, a negative timeout, or a redirect URI or authorization
// endpoint it cannot use.
func NewPKCEFlow(c PKCEConfig) (Flow, error) {
	switch {
	case c.Prompter == nil:
		return nil, errors.New("authenticator: PKCEConfig.Prompter is nil: a browser login needs a person to show it to (loginui.Terminal)")
	case c.Timeout < 0:
		return nil, fmt.Errorf("authenticator: PKCEConfig.Timeout %v is negative", c.Timeout)
	case c.Timeout == 0:
		c.Timeout = defaultLoginTimeout
	}
	c.ClientID = strings.TrimSpace(c.ClientID)
	if c.RedirectURI != "" {
		if _, err := loopbackRedirect(c.RedirectURI); err != nil {
			return nil, fmt.Errorf("authenticator: PKCEConfig.RedirectURI: %w", err)
		}
	}
	if c.AuthorizationEndpoint != "" {
		if err := checkURL(c.AuthorizationEndpoint); err != nil {
			return nil, fmt.Errorf("authenticator: PKCEConfig.AuthorizationEndpoint: %w", err)
		}
	}
	for name := range c.AuthParams {
		if slices.Contains(flowParams, name) {
			return nil, fmt.Errorf("authenticator: PKCEConfig.AuthParams: %q is the flow's own parameter", clip(name, 64))
		}
	}
	c.AuthParams = maps.Clone(c.AuthParams)
	return &pkceFlow{c: c}, nil
}

func (f *pkceFlow) flowTimeout() time.Duration { return f.c.Timeout }
func (f *pkceFlow) flowClientID() string       { return f.c.ClientID }

// Token refreshes prev when it has a refresh token and otherwise, or when
// the server refuses the refresh token (refreshRefused), runs a browser
// login.
func (f *pkceFlow) Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error) {
	if cfg == nil {
		cfg = &configstore.ClientConfig{}
	}
	conf, err := f.oauth2Config(cfg)
	if err != nil {
		return nil, err
	}
	var refused error
	if prev != nil && prev.RefreshToken != "" {
		tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: prev.RefreshToken}).Token()
		if err == nil {
			return tok, nil
		}
		err = fmt.Errorf("refreshing the login: %w", tokenError(ctx, redactURL(cfg.TokenEndpoint), err))
		if !refreshRefused(err) {
			return nil, err
		}
		refused = err
	}
	return loginOrWait(ctx, refused, f.c.Prompter, func() (*oauth2.Token, error) {
		return f.login(ctx, conf, cfg)
	})
}

// oauth2Config resolves the client id, endpoints and redirect URI.
func (f *pkceFlow) oauth2Config(cfg *configstore.ClientConfig) (*oauth2.Config, error) {
	clientID := firstNonEmpty(f.c.ClientID, cfg.ClientID)
	authURL := firstNonEmpty(f.c.AuthorizationEndpoint, cfg.AuthorizationEndpoint)
	redirect := firstNonEmpty(f.c.RedirectURI, cfg.RedirectURI, defaultRedirectURI)
	switch {
	case clientID == "":
		return nil, ErrNoClientID
	case authURL == "":
		return nil, fmt.Errorf("%w: no authorization endpoint was configured and the config store advertised none", ErrNoEndpoint)
	case cfg.TokenEndpoint == "":
		return nil, ErrNoTokenEndpoint
	}
	if err := checkURL(authURL); err != nil {
		return nil, fmt.Errorf("authorization endpoint: %w", err)
	}
	if _, err := loopbackRedirect(redirect); err != nil {
		return nil, fmt.Errorf("redirect URI from the config store: %w", err)
	}
	return &oauth2.Config{
		ClientID: clientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:  authURL,
			TokenURL: cfg.TokenEndpoint,
			// A public client has no secret: its id goes in the body.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirect,
		Scopes:      cfg.Scopes,
	}, nil
}

// login runs one browser login: listen, print and open the URL, wait for
// the redirect, exchange the code.
func (f *pkceFlow) login(ctx context.Context, conf *oauth2.Config, cfg *configstore.ClientConfig) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("browser login: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.c.Timeout)
	defer cancel()

	redirect, _ := loopbackRedirect(conf.RedirectURL) // checked by oauth2Config
	listeners, err := listenLoopback(ctx, redirect)
	if err != nil {
		return nil, err
	}
	state, err := randomState()
	if err != nil {
		closeAll(listeners)
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL(state, f.authParams(verifier, conf.Scopes, cfg)...)

	cb := &callback{
		ui:     f.c.Prompter,
		path:   cmpPath(redirect.Path),
		state:  state,
		issuer: strings.TrimSuffix(cfg.Issuer, "/"),
		iss:    cfg.IssuerInAuthorizationResponse,
		result: make(chan loginResult, 1),
		exchange: func(code string) (*oauth2.Token, error) {
			tok, err := conf.Exchange(ctx, code, append([]oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, audienceOptions(cfg, true)...)...)
			if err != nil {
				return nil, tokenError(ctx, redactURL(conf.Endpoint.TokenURL), err)
			}
			return tok, nil
		},
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(cb.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	var served sync.WaitGroup
	for _, l := range listeners {
		served.Go(func() { _ = srv.Serve(l) })
	}

	browserCtx, stopBrowser := context.WithCancel(ctx)
	opened := make(chan struct{})
	go func() {
		defer close(opened)
		f.c.Prompter.Browse(browserCtx, authURL)
	}()
	defer func() {
		// Let the page reach the browser, then stop listening.
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), callbackShutdown)
		defer scancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
		served.Wait()
		// A browser hook that is still reading the page gets a moment
		// to finish before it is told to stop.
		select {
		case <-opened:
		case <-sctx.Done():
		}
		stopBrowser()
		<-opened
	}()

	select {
	case r := <-cb.result:
		if r.err != nil {
			return nil, fmt.Errorf("browser login: %w", r.err)
		}
		f.c.Prompter.LoggedIn(ctx)
		return r.tok, nil
	case <-ctx.Done():
		cb.finish() // a redirect that comes now gets "already finished"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("browser login: no login arrived at %s in time (the login timeout is %v): %w", conf.RedirectURL, f.c.Timeout, ctx.Err())
		}
		return nil, fmt.Errorf("browser login: %w", ctx.Err())
	}
}

// authParams are the options of the authorization request beyond the
// client id, redirect URI, scopes and state.
func (f *pkceFlow) authParams(verifier string, scopes []string, cfg *configstore.ClientConfig) []oauth2.AuthCodeOption {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, audienceOptions(cfg, false)...)

	if slices.Contains(scopes, "offline_access") && !f.c.AuthParams.Has("prompt") {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	for _, name := range slices.Sorted(maps.Keys(f.c.AuthParams)) {
		if cfg.Audience != "" && (name == "audience" || name == "resource") {
			continue // the configured audience wins, however it is sent
		}
		opts = append(opts, oauth2.SetAuthURLParam(name, strings.Join(f.c.AuthParams[name], " ")))
	}
	return opts
}

type loginResult struct {
	tok *oauth2.Token
	err error
}

// callback is the handler at the redirect URI. The first request with the
// right path decides the login; later ones are told it is over.
type callback struct {
	ui    Prompter
	path  string
	state string
	// issuer is the server's issuer, when its metadata names one; iss,
	// that every response must carry it (RFC 9207).
	issuer   string
	iss      bool
	exchange func(code string) (*oauth2.Token, error)
	result   chan loginResult // buffered, written once
	done     atomic.Bool
}

// fromIssuer reports whether an authorization response may be used as
// RFC 9207 says: its iss is the issuer's, and is there when the server
// promised it.
func (c *callback) fromIssuer(q url.Values) bool {
	iss, ok := q["iss"]
	switch {
	case !ok:
		return !c.iss
	case c.issuer == "":
		return !c.iss // nothing to compare with
	}
	return len(iss) == 1 && strings.TrimSuffix(iss[0], "/") == c.issuer
}

// finish marks the login decided and reports whether this call did so.
func (c *callback) finish() bool { return c.done.CompareAndSwap(false, true) }

func (c *callback) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != c.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(c.state)) != 1 {
		// Not this login's answer: a forged or stale request. It is told
		// so, and the login goes on waiting for the real redirect: a
		// request anyone on the machine can send must not end it.
		c.page(w, http.StatusBadRequest, ErrStateMismatch)
		return
	}
	if !c.finish() {
		c.page(w, http.StatusGone, errLoginFinished)
		return
	}
	var res loginResult
	status := http.StatusOK
	switch {
	case q.Get("error") != "":
		res.err, status = &AuthorizationError{ErrorCode: q.Get("error"), ErrorDescription: q.Get("error_description")}, http.StatusForbidden
	case !c.fromIssuer(q):
		res.err, status = fmt.Errorf("the authorization response names issuer %q, not %q: refused (RFC 9207: a response from another server, a mix-up)",
			clip(q.Get("iss"), 200), c.issuer), http.StatusBadRequest
	case q.Get("code") == "":
		res.err, status = errors.New("the redirect carried neither a code nor an error"), http.StatusBadRequest
	default:
		if res.tok, res.err = c.exchange(q.Get("code")); res.err != nil {
			status = http.StatusBadGateway
		}
	}
	c.page(w, status, res.err)
	c.result <- res
}

// page answers the browser with the prompter's page for err (nil: logged
// in), under headers that keep the page and its URL, which holds the
// code, to this origin.
func (c *callback) page(w http.ResponseWriter, status int, err error) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Connection", "close")
	w.WriteHeader(status)
	c.ui.CallbackPage(w, err)
}

// loopbackRedirect parses a redirect URI the flow can listen on: http, a
// loopback host (localhost, 127.0.0.1, ::1), an explicit port.
func loopbackRedirect(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("redirect URI %q cannot be parsed", clip(uri, 200))
	}
	host, port := u.Hostname(), u.Port()
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if u.Scheme != "http" || !loopback || port == "" || port == "0" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("redirect URI %q is not http:// on localhost or a loopback address with a port: the login listens there for the browser", clip(redactURL(uri), 200))
	}
	return u, nil
}

// listenLoopback listens where the redirect points: for localhost on both
// 127.0.0.1 and ::1 (browsers try either), else on the address given.
func listenLoopback(ctx context.Context, u *url.URL) ([]net.Listener, error) {
	var lc net.ListenConfig
	hosts := []string{u.Hostname()}
	if hosts[0] == "localhost" {
		hosts = []string{"127.0.0.1", "::1"}
	}
	var ls []net.Listener
	for i, h := range hosts {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(h, u.Port()))
		if err != nil {
			if i > 0 && len(ls) > 0 && !isAddrInUse(err) {
				continue // no IPv6 on this machine: IPv4 is enough
			}
			closeAll(ls)
			return nil, fmt.Errorf("cannot listen on %s for the login's redirect (is another login running, or another program using port %s?): %w",
				net.JoinHostPort(h, u.Port()), u.Port(), err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

func cmpPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func randomState() (string, error) {
	b := make([]byte, stateBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the login state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

var (
	_ timeoutFlow  = (*pkceFlow)(nil)
	_ clientIDFlow = (*pkceFlow)(nil)
)
