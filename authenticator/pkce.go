package authenticator

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
)

const (
	// DefaultRedirectURI is the redirect URI of a PKCE login when neither
	// WithRedirectURI nor the config store names one: flyteidl's default.
	DefaultRedirectURI = "http://localhost:53593/callback"
	// DefaultLoginTimeout bounds a whole browser login when
	// WithLoginTimeout is not given: flyteidl's pkceConfig.timeout.
	DefaultLoginTimeout = 2 * time.Minute

	// callbackShutdown bounds the wait for the callback page to reach the
	// browser once the login is decided.
	callbackShutdown = 2 * time.Second
	// stateBytes is the entropy of the state parameter.
	stateBytes = 32
)

// Sentinel errors of the browser login, matched with errors.Is.
var (
	// ErrStateMismatch reports a redirect whose state parameter is not the
	// one this login sent: an answer to another login, or a forged one.
	ErrStateMismatch = errors.New("the redirect's state does not match this login (an answer to another login, or a forged request)")
	// ErrNoAuthorizationEndpoint reports that neither
	// WithAuthorizationEndpoint nor the config store gave one.
	ErrNoAuthorizationEndpoint = errors.New("no authorization endpoint: none was set with WithAuthorizationEndpoint and the config store advertised none")
	// ErrNoClientID reports that neither WithPKCEClientID nor the config
	// store gave the public client id.
	ErrNoClientID = errors.New("no client id: none was set with WithPKCEClientID and the config store advertised none")
)

// AuthorizationError is an error the authorization server sent to the
// redirect URI (RFC 6749 §4.1.2.1), such as access_denied when the person
// refused consent.
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

// PKCEFlow is the browser login of a public client: the authorization code
// grant with PKCE (RFC 6749 §4.1, RFC 7636 with S256), flytekit's
// PKCEAuthenticator. It prints the authorization URL (and opens a browser
// where it can), receives the code on a loopback listener at the redirect
// URI, and exchanges it for a token. When the previous token has a refresh
// token, it uses that first and opens the browser only when the server
// answers invalid_grant.
//
// A PKCEFlow is a Flow, a TimeoutFlow and a ClientIDFlow; give it to a
// Keeper together with a TokenCache so that a login outlives the process.
// It is safe for concurrent use, but two logins at once compete for the
// redirect port: the Keeper runs one at a time.
type PKCEFlow struct {
	clientID    string
	redirectURI string
	authURL     string
	timeout     time.Duration
	browser     func(ctx context.Context, authURL string) error
	out         io.Writer
	outMu       sync.Mutex // guards writes to out
}

// PKCEOption configures NewPKCEFlow.
type PKCEOption func(*PKCEFlow) error

// WithPKCEClientID sets the public client id, which wins over the config
// store's. By default the store's (GetPublicClientConfig) is used.
func WithPKCEClientID(id string) PKCEOption {
	return func(f *PKCEFlow) error {
		if strings.TrimSpace(id) == "" {
			return errors.New("WithPKCEClientID: empty client id")
		}
		f.clientID = id
		return nil
	}
}

// WithRedirectURI sets the redirect URI, which must be http:// on a
// loopback host with an explicit port, the address the flow listens on. By
// default the store's is used, else DefaultRedirectURI.
func WithRedirectURI(uri string) PKCEOption {
	return func(f *PKCEFlow) error {
		if _, err := loopbackRedirect(uri); err != nil {
			return fmt.Errorf("WithRedirectURI: %w", err)
		}
		f.redirectURI = uri
		return nil
	}
}

// WithAuthorizationEndpoint sets the authorization endpoint, which wins
// over the store's (GetOAuth2Metadata's authorization_endpoint).
func WithAuthorizationEndpoint(endpoint string) PKCEOption {
	return func(f *PKCEFlow) error {
		if err := checkURL(endpoint); err != nil {
			return fmt.Errorf("WithAuthorizationEndpoint: %w", err)
		}
		f.authURL = endpoint
		return nil
	}
}

// WithLoginTimeout bounds a whole login, from printing the URL to holding
// the token. The default is DefaultLoginTimeout.
func WithLoginTimeout(d time.Duration) PKCEOption {
	return func(f *PKCEFlow) error {
		if d <= 0 {
			return fmt.Errorf("WithLoginTimeout: %v is not positive", d)
		}
		f.timeout = d
		return nil
	}
}

// WithBrowser replaces how the authorization URL is opened. open is called
// once per login, in a goroutine of its own, after the URL was printed; the
// login waits for it to return before it returns itself, so open must
// return when ctx ends. An error from open is printed, not fatal: the
// person can still open the printed URL. The default runs xdg-open (open
// on macOS, rundll32 url.dll on Windows) without a shell; nil turns the
// browser off, leaving only the printed URL.
func WithBrowser(open func(ctx context.Context, authURL string) error) PKCEOption {
	return func(f *PKCEFlow) error {
		if open == nil {
			open = func(context.Context, string) error { return nil }
		}
		f.browser = open
		return nil
	}
}

// WithLoginOutput sets where the authorization URL and the login's
// messages to the person are written. The default is os.Stderr.
func WithLoginOutput(w io.Writer) PKCEOption {
	return func(f *PKCEFlow) error {
		if w == nil {
			return errors.New("WithLoginOutput: nil writer")
		}
		f.out = w
		return nil
	}
}

// NewPKCEFlow returns a browser login configured by opts.
func NewPKCEFlow(opts ...PKCEOption) (*PKCEFlow, error) {
	f := &PKCEFlow{timeout: DefaultLoginTimeout, browser: OpenBrowser, out: os.Stderr}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(f); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// FlowTimeout returns the login timeout, so that a Keeper gives the
// browser login that long instead of its token timeout.
func (f *PKCEFlow) FlowTimeout() time.Duration { return f.timeout }

// FlowClientID returns the client id set with WithPKCEClientID, or "" when
// the config store's is used.
func (f *PKCEFlow) FlowClientID() string { return f.clientID }

// String describes the flow; it holds no secret.
func (f *PKCEFlow) String() string {
	return fmt.Sprintf("PKCEFlow{clientID: %q, redirectURI: %q, authorizationEndpoint: %q, timeout: %v}",
		f.clientID, f.redirectURI, redactURL(f.authURL), f.timeout)
}

// Token refreshes prev when it has a refresh token and otherwise, or when
// the server answers invalid_grant, runs a browser login.
func (f *PKCEFlow) Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error) {
	if cfg == nil {
		cfg = &configstore.ClientConfig{}
	}
	conf, err := f.oauth2Config(cfg)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.RefreshToken != "" {
		tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: prev.RefreshToken}).Token()
		if err == nil {
			return tok, nil
		}
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			return nil, fmt.Errorf("refreshing the login: %w", tokenError(ctx, redactURL(cfg.TokenEndpoint), err))
		}
		f.printf("The saved login can no longer be refreshed; log in again.\n")
	}
	return f.login(ctx, conf, cfg.Audience)
}

// oauth2Config resolves the client id, endpoints and redirect URI.
func (f *PKCEFlow) oauth2Config(cfg *configstore.ClientConfig) (*oauth2.Config, error) {
	clientID := firstNonEmpty(f.clientID, cfg.ClientID)
	authURL := firstNonEmpty(f.authURL, cfg.AuthorizationEndpoint)
	redirect := firstNonEmpty(f.redirectURI, cfg.RedirectURI, DefaultRedirectURI)
	switch {
	case clientID == "":
		return nil, ErrNoClientID
	case authURL == "":
		return nil, ErrNoAuthorizationEndpoint
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
func (f *PKCEFlow) login(ctx context.Context, conf *oauth2.Config, audience string) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("browser login: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
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
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", audience))
	}
	authURL := conf.AuthCodeURL(state, opts...)

	cb := &callback{
		path:   cmpPath(redirect.Path),
		state:  state,
		result: make(chan loginResult, 1),
		exchange: func(code string) (*oauth2.Token, error) {
			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				return nil, tokenError(ctx, redactURL(conf.Endpoint.TokenURL), err)
			}
			return tok, nil
		},
	}
	srv := &http.Server{
		Handler:           cb,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	var served sync.WaitGroup
	for _, l := range listeners {
		served.Go(func() { _ = srv.Serve(l) })
	}

	f.printf("Log in with your browser at this URL (it opens by itself where it can):\n\n  %s\n\nWaiting for the login at %s ...\n", authURL, conf.RedirectURL)
	browserCtx, stopBrowser := context.WithCancel(ctx)
	opened := make(chan struct{})
	go func() {
		defer close(opened)
		if err := f.browser(browserCtx, authURL); err != nil {
			f.printf("Could not open a browser (%s); open the URL above by hand.\n", clip(err.Error(), 200))
		}
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
		f.printf("Logged in.\n")
		return r.tok, nil
	case <-ctx.Done():
		cb.finish() // a redirect that comes now gets "already finished"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("browser login: no login arrived at %s in time (the login timeout is %v): %w", conf.RedirectURL, f.timeout, ctx.Err())
		}
		return nil, fmt.Errorf("browser login: %w", ctx.Err())
	}
}

func (f *PKCEFlow) printf(format string, args ...any) {
	f.outMu.Lock()
	defer f.outMu.Unlock()
	fmt.Fprintf(f.out, format, args...)
}

type loginResult struct {
	tok *oauth2.Token
	err error
}

// callback is the handler at the redirect URI. The first request with the
// right path decides the login; later ones are told it is over.
type callback struct {
	path     string
	state    string
	exchange func(code string) (*oauth2.Token, error)
	result   chan loginResult // buffered, written once
	done     atomic.Bool
}

// finish marks the login decided and reports whether this call did so.
func (c *callback) finish() bool { return c.done.CompareAndSwap(false, true) }

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != c.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !c.finish() {
		writePage(w, http.StatusGone, pageData{Title: "Login already finished", Message: "This login has already finished. You can close this window."})
		return
	}
	q := r.URL.Query()
	var res loginResult
	switch {
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(c.state)) != 1:
		res.err = ErrStateMismatch
		writePage(w, http.StatusBadRequest, pageData{Title: "Login failed", Message: "This answer does not belong to the login that is waiting (state mismatch). Start the login again."})
	case q.Get("error") != "":
		ae := &AuthorizationError{ErrorCode: q.Get("error"), ErrorDescription: q.Get("error_description")}
		res.err = ae
		writePage(w, http.StatusForbidden, pageData{Title: "Login failed", Message: "The authorization server refused the login.", Code: clip(ae.ErrorCode, 64), Detail: clip(ae.ErrorDescription, 256)})
	case q.Get("code") == "":
		res.err = errors.New("the redirect carried neither a code nor an error")
		writePage(w, http.StatusBadRequest, pageData{Title: "Login failed", Message: "The redirect carried neither a code nor an error."})
	default:
		res.tok, res.err = c.exchange(q.Get("code"))
		if res.err != nil {
			writePage(w, http.StatusBadGateway, pageData{Title: "Login failed", Message: "The code could not be exchanged for a token.", Detail: clip(res.err.Error(), 256)})
		} else {
			writePage(w, http.StatusOK, pageData{Title: "Logged in", Message: "You are logged in. You can close this window and return to the terminal."})
		}
	}
	c.result <- res
}

type pageData struct {
	Title, Message, Code, Detail string
}

// page is the callback's answer; html/template escapes every field.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}code{background:#f3f3f3;padding:.1em .3em}</style>
</head><body><h1 id="title">{{.Title}}</h1><p id="message">{{.Message}}</p>
{{- if .Code}}<p>Error: <code id="error">{{.Code}}</code></p>{{end}}
{{- if .Detail}}<p id="detail">{{.Detail}}</p>{{end}}
</body></html>
`))

func writePage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The URL of this page holds the code: no other origin may see it.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Connection", "close")
	w.WriteHeader(status)
	_ = page.Execute(w, d)
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

// OpenBrowser opens authURL in the desktop's browser, without a shell:
// xdg-open on Linux and the BSDs, open on macOS, rundll32 url.dll on
// Windows. It returns once the opener started; the opener is reaped in the
// background. It is the default of WithBrowser.
func OpenBrowser(_ context.Context, authURL string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", authURL)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", authURL)
	default:
		cmd = exec.Command("xdg-open", authURL)
	}
	// The opener must not write into the terminal the URL was printed on.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	// Not tied to ctx: killing the opener could take the browser with it.
	go func() { _ = cmd.Wait() }()
	return nil
}

var (
	_ TimeoutFlow  = (*PKCEFlow)(nil)
	_ ClientIDFlow = (*PKCEFlow)(nil)
)
