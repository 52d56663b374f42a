package authenticator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
)

const pkceClientID = "flytectl"

// freeRedirect returns a loopback redirect URI on a port that was free a
// moment ago.
func freeRedirect(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return fmt.Sprintf("http://127.0.0.1:%d/callback", port)
}

// pkceFixture is an authorization server, the config a store would give
// for it and a "browser" that follows the authorization URL with Go's
// HTTP client the way a browser follows redirects.
type pkceFixture struct {
	as       *testserver.AuthorizationServer
	cfg      *configstore.ClientConfig
	out      *syncBuffer
	opened   atomic.Int64        // times the browser was asked to open a URL
	pages    chan page           // what the browser showed
	navigate func(string) string // turns the authorization URL into the URL the browser loads
	client   *http.Client
}

type page struct {
	status int
	header http.Header
	body   string
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newPKCEFixture(t *testing.T, opts ...testserver.AuthorizeOption) *pkceFixture {
	t.Helper()
	redirect := freeRedirect(t)
	as, err := testserver.NewAuthorizationServer(append([]testserver.AuthorizeOption{testserver.WithPublicClient(pkceClientID, redirect)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(as.Close)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	t.Cleanup(client.CloseIdleConnections)
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the terminal showed:\n%s", out)
		}
	})
	return &pkceFixture{
		as: as,
		cfg: &configstore.ClientConfig{
			TokenEndpoint:         as.TokenURL(),
			AuthorizationEndpoint: as.AuthorizeURL(),
			ClientID:              pkceClientID,
			RedirectURI:           redirect,
			Scopes:                []string{"openid", "offline"},
			Audience:              "https://flyte.example",
		},
		out:      out,
		pages:    make(chan page, 4),
		navigate: func(u string) string { return u },
		client:   client,
	}
}

// browser is the loginui.Terminal's Browser hook: it loads the page and
// keeps what it showed.
func (fx *pkceFixture) browser(ctx context.Context, authURL string) error {
	fx.opened.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fx.navigate(authURL), nil)
	if err != nil {
		return err
	}
	resp, err := fx.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fx.pages <- page{status: resp.StatusCode, header: resp.Header, body: string(body)}
	return nil
}

// flow is a browser login that shows itself on a loginui.Terminal writing
// to fx.out and opening fx.browser; each of configure may change the
// PKCEConfig before the flow is built.
func (fx *pkceFixture) flow(t *testing.T, configure ...func(*authenticator.PKCEConfig)) authenticator.Flow {
	t.Helper()
	c := authenticator.PKCEConfig{Prompter: &loginui.Terminal{Out: fx.out, Browser: fx.browser}}
	for _, f := range configure {
		f(&c)
	}
	f, err := authenticator.NewPKCEFlow(c)
	require.NoError(t, err)
	return f
}

// withBrowser makes the login's Terminal open URLs with open instead of
// fx.browser; a nil open prints the URL and opens nothing (NoBrowser).
func (fx *pkceFixture) withBrowser(open func(ctx context.Context, authURL string) error) func(*authenticator.PKCEConfig) {
	return func(c *authenticator.PKCEConfig) {
		c.Prompter = &loginui.Terminal{Out: fx.out, Browser: open, NoBrowser: open == nil}
	}
}

// withLoginTimeout sets PKCEConfig.Timeout.
func withLoginTimeout(d time.Duration) func(*authenticator.PKCEConfig) {
	return func(c *authenticator.PKCEConfig) { c.Timeout = d }
}

// callbackTo makes the browser skip the authorization server and load the
// redirect URI with the given query; without a state, each login's own.
func (fx *pkceFixture) callbackTo(query url.Values) {
	fx.navigate = func(authURL string) string {
		q := maps.Clone(query)
		if !q.Has("state") {
			u, _ := url.Parse(authURL)
			q.Set("state", u.Query().Get("state"))
		}
		return fx.cfg.RedirectURI + "?" + q.Encode()
	}
}

func (fx *pkceFixture) lastPage(t *testing.T) page {
	t.Helper()
	return receiveWithin(t, fx.pages, "the callback page")
}

// requireClosed checks that nothing listens on the redirect port any more.
func (fx *pkceFixture) requireClosed(t *testing.T) {
	t.Helper()
	u, err := url.Parse(fx.cfg.RedirectURI)
	require.NoError(t, err)
	l, err := net.Listen("tcp", u.Host)
	require.NoError(t, err, "the redirect port is still taken after the login")
	require.NoError(t, l.Close())
}

func TestPKCELogin(t *testing.T) {
	fx := newPKCEFixture(t)
	f := fx.flow(t)
	tok, err := f.Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken, "offline access gives a refresh token")
	require.False(t, tok.Expiry.IsZero())
	info, err := fx.as.Validate(t.Context(), tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, pkceClientID, info.ClientID)
	assert.Equal(t, []string{"openid", "offline"}, info.Scopes)
	assert.Equal(t, "https://flyte.example", info.Audience)

	q := fx.as.LastAuthorization()
	assert.Equal(t, "code", q.Get("response_type"))
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.Len(t, q.Get("code_challenge"), 43, "base64url of a SHA-256")
	assert.GreaterOrEqual(t, len(q.Get("state")), 32)
	assert.Equal(t, fx.cfg.RedirectURI, q.Get("redirect_uri"))
	assert.Equal(t, int64(1), fx.as.CodeGrants())
	assert.Equal(t, int64(1), fx.opened.Load())

	p := fx.lastPage(t)
	assert.Equal(t, http.StatusOK, p.status)
	assert.Contains(t, p.body, "You are logged in")
	assert.Equal(t, "no-referrer", p.header.Get("Referrer-Policy"), "the callback URL holds the code")
	assert.Equal(t, "no-store", p.header.Get("Cache-Control"))
	assert.Equal(t, "nosniff", p.header.Get("X-Content-Type-Options"))
	assert.Contains(t, p.header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, p.header.Get("Content-Type"), "text/html")

	out := fx.out.String()
	assert.Contains(t, out, fx.as.AuthorizeURL()+"?", "the URL is printed for a person to open")
	assert.Contains(t, out, "Waiting for the login")
	assert.Contains(t, out, "Logged in.")
	assert.NotContains(t, out, tok.AccessToken)
	assert.NotContains(t, out, tok.RefreshToken)
	fx.requireClosed(t)

	// The flow can log in again: the listener was released.
	_, err = f.Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	fx.lastPage(t)
}

func TestPKCELoginOnLocalhost(t *testing.T) {
	redirect := strings.Replace(freeRedirect(t), "127.0.0.1", "localhost", 1)
	fx := newPKCEFixture(t, testserver.WithPublicClient("cli", redirect))
	fx.cfg.ClientID, fx.cfg.RedirectURI = "", ""
	f := fx.flow(t, func(c *authenticator.PKCEConfig) { c.ClientID, c.RedirectURI = "cli", redirect })
	id, ok := authenticator.FlowClientID(f)
	require.True(t, ok)
	require.Equal(t, "cli", id)
	_, err := f.Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	assert.Equal(t, "cli", fx.as.LastAuthorization().Get("client_id"))
	assert.Equal(t, redirect, fx.as.LastAuthorization().Get("redirect_uri"))
	fx.lastPage(t)
}

func TestPKCEOptionsWinOverTheStore(t *testing.T) {
	fx := newPKCEFixture(t)
	cfg := *fx.cfg
	cfg.AuthorizationEndpoint = "https://wrong.example/auth"
	f := fx.flow(t, func(c *authenticator.PKCEConfig) { c.AuthorizationEndpoint = fx.as.AuthorizeURL() })
	_, err := f.Token(t.Context(), &cfg, nil)
	require.NoError(t, err)
	fx.lastPage(t)
}

// A redirect that is not this login's (a forged or stale state) is
// answered with the error page and does not end the login, which waits on
// for the real redirect until its timeout (issue 23, item 9).
func TestPKCEStateMismatch(t *testing.T) {
	fx := newPKCEFixture(t)
	fx.callbackTo(url.Values{"code": {"whatever"}, "state": {"forged"}})
	_, err := fx.flow(t, func(c *authenticator.PKCEConfig) { c.Timeout = 500 * time.Millisecond }).Token(t.Context(), fx.cfg, nil)
	require.ErrorContains(t, err, "no login arrived", "the forged request did not end the login")
	p := fx.lastPage(t)
	assert.Equal(t, http.StatusBadRequest, p.status)
	assert.Contains(t, p.body, "state mismatch")
	assert.Zero(t, fx.as.TokenRequests(), "no code is exchanged for a forged answer")
	fx.requireClosed(t)
}

// A forged request to the callback before the person's real redirect
// leaves the real login to succeed (issue 23, item 9).
func TestPKCEForgedRedirectDoesNotEndTheLogin(t *testing.T) {
	fx := newPKCEFixture(t)
	forged := make(chan int, 1)
	f := fx.flow(t, func(c *authenticator.PKCEConfig) {
		c.Prompter = &loginui.Terminal{Out: fx.out, Browser: func(ctx context.Context, u string) error {
			// A page in another tab hits the callback first.
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fx.cfg.RedirectURI+"?code=evil&state=forged", nil)
			if err != nil {
				return err
			}
			resp, err := fx.client.Do(req)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			forged <- resp.StatusCode
			return fx.browser(ctx, u)
		}}
	})
	tok, err := f.Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	assert.Equal(t, http.StatusBadRequest, <-forged)
	assert.Equal(t, http.StatusOK, fx.lastPage(t).status)
	assert.Equal(t, int64(1), fx.as.TokenRequests(), "the real code only")
}

func TestPKCEWrongCode(t *testing.T) {
	fx := newPKCEFixture(t)
	fx.callbackTo(url.Values{"code": {"not-a-code-the-server-issued"}})
	_, err := fx.flow(t).Token(t.Context(), fx.cfg, nil)
	var te *authenticator.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "invalid_grant", te.ErrorCode)
	assert.Equal(t, http.StatusBadRequest, te.StatusCode)
	p := fx.lastPage(t)
	assert.Equal(t, http.StatusBadGateway, p.status)
	assert.Contains(t, p.body, "did not succeed")
	assert.Contains(t, p.body, "invalid_grant", "the page says why")
	assert.Equal(t, int64(1), fx.as.TokenRequests())
}

func TestPKCEDeniedConsent(t *testing.T) {
	fx := newPKCEFixture(t)
	fx.as.SetConsent(testserver.ConsentDeny)
	_, err := fx.flow(t).Token(t.Context(), fx.cfg, nil)
	var ae *authenticator.AuthorizationError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "access_denied", ae.ErrorCode)
	assert.Contains(t, err.Error(), "access_denied")
	p := fx.lastPage(t)
	assert.Equal(t, http.StatusForbidden, p.status)
	assert.Contains(t, p.body, "access_denied")
	assert.Contains(t, p.body, "&lt;script&gt;", "the server's description is escaped")
	assert.NotContains(t, p.body, "<script>")
	assert.Zero(t, fx.as.TokenRequests())
}

func TestPKCEErrorPageEscapesEverything(t *testing.T) {
	fx := newPKCEFixture(t)
	fx.callbackTo(url.Values{"error": {`<img src=x onerror="alert(1)">`}, "error_description": {"</p><script>alert(2)</script>"}})
	_, err := fx.flow(t).Token(t.Context(), fx.cfg, nil)
	require.Error(t, err)
	p := fx.lastPage(t)
	assert.NotContains(t, p.body, "<img")
	assert.NotContains(t, p.body, "<script>")
	assert.Contains(t, p.header.Get("Content-Security-Policy"), "default-src 'none'")
}

func TestPKCEPortInUse(t *testing.T) {
	fx := newPKCEFixture(t)
	u, err := url.Parse(fx.cfg.RedirectURI)
	require.NoError(t, err)
	l, err := net.Listen("tcp", u.Host)
	require.NoError(t, err)
	defer l.Close()
	_, err = fx.flow(t).Token(t.Context(), fx.cfg, nil)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Contains(t, err.Error(), "port "+u.Port())
	assert.Zero(t, fx.opened.Load(), "no browser for a login that cannot receive its answer")
}

func TestPKCETimeout(t *testing.T) {
	fx := newPKCEFixture(t)
	// A browser that never comes back: the person walked away.
	f := fx.flow(t, withLoginTimeout(20*time.Millisecond), fx.withBrowser(nil))
	d, ok := authenticator.FlowTimeout(f)
	require.True(t, ok)
	require.Equal(t, 20*time.Millisecond, d)
	_, err := f.Token(t.Context(), fx.cfg, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "in time")
	fx.requireClosed(t)
}

func TestPKCEContextCancelled(t *testing.T) {
	fx := newPKCEFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	f := fx.flow(t, fx.withBrowser(func(context.Context, string) error {
		cancel() // the user pressed Ctrl-C
		return nil
	}))
	_, err := f.Token(ctx, fx.cfg, nil)
	require.ErrorIs(t, err, context.Canceled)
	fx.requireClosed(t)

	_, err = f.Token(ctx, fx.cfg, nil)
	require.ErrorIs(t, err, context.Canceled, "an ended context starts no login")
}

func TestPKCEBrowserErrorIsNotFatal(t *testing.T) {
	fx := newPKCEFixture(t)
	var byHand sync.WaitGroup
	defer byHand.Wait()
	f := fx.flow(t, fx.withBrowser(func(_ context.Context, u string) error {
		// The person opens the printed URL by hand.
		byHand.Go(func() { _ = fx.browser(t.Context(), u) })
		return errors.New("xdg-open: not found")
	}))
	_, err := f.Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	assert.Contains(t, fx.out.String(), "Could not open a browser (xdg-open: not found)")
	fx.lastPage(t)
}

func TestPKCERefreshToken(t *testing.T) {
	fx := newPKCEFixture(t)
	f := fx.flow(t)
	first, err := f.Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	fx.lastPage(t)

	second, err := f.Token(t.Context(), fx.cfg, first)
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessToken, second.AccessToken)
	assert.NotEqual(t, first.RefreshToken, second.RefreshToken, "the server rotates refresh tokens")
	assert.Equal(t, int64(1), fx.opened.Load(), "no browser for a refresh")
	assert.Equal(t, int64(1), fx.as.Authorizations())
	assert.Equal(t, int64(1), fx.as.RefreshGrants())
	_, err = fx.as.Validate(t.Context(), second.AccessToken)
	require.NoError(t, err)
}

func TestPKCERefreshInvalidGrantLogsInAgain(t *testing.T) {
	fx := newPKCEFixture(t)
	f := fx.flow(t)
	first, err := f.Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	fx.lastPage(t)
	fx.as.RevokeRefreshTokens()

	second, err := f.Token(t.Context(), fx.cfg, first)
	require.NoError(t, err)
	fx.lastPage(t)
	assert.Equal(t, int64(2), fx.opened.Load(), "a new browser login")
	assert.Equal(t, int64(2), fx.as.CodeGrants())
	assert.Zero(t, fx.as.RefreshGrants())
	assert.Contains(t, fx.out.String(), "Your saved login is no longer accepted; log in again.")
	_, err = fx.as.Validate(t.Context(), second.AccessToken)
	require.NoError(t, err)
}

// TestPKCERefreshRefusedMeansLogin: any OAuth2 error answer to a refresh
// grant, or a 4xx, means the refresh token is dead, whatever the server
// calls it: FlyteAdmin's own authorization server answers a refresh token
// past its lifetime with HTTP 500 server_error. A new login follows.
func TestPKCERefreshRefusedMeansLogin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault testserver.Fault
	}{
		{"server_error, as FlyteAdmin answers", testserver.FaultOAuthError(http.StatusInternalServerError, "server_error", "The authorization server encountered an unexpected condition")},
		{"invalid_client", testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "")},
		{"invalid_request", testserver.FaultOAuthError(http.StatusBadRequest, "invalid_request", "")},
		{"400 without a body", testserver.FaultStatus(http.StatusBadRequest, "", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newPKCEFixture(t)
			fx.as.SetTokenFault(testserver.FaultOnce(tc.fault)) // the refresh; the login's exchange goes through
			tok, err := fx.flow(t).Token(t.Context(), fx.cfg, &oauth2.Token{AccessToken: "old", RefreshToken: "rt"})
			require.NoError(t, err)
			fx.lastPage(t)
			assert.EqualValues(t, 1, fx.opened.Load(), "a new login")
			assert.Contains(t, fx.out.String(), "Your saved login is no longer accepted; log in again.")
			_, err = fx.as.Validate(t.Context(), tok.AccessToken)
			require.NoError(t, err)
		})
	}
}

// TestPKCERefreshTransientErrorsAreReturned: a 5xx without an OAuth2
// error, or no answer, may pass: the refresh token is kept and no browser
// opens.
func TestPKCERefreshTransientErrorsAreReturned(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault testserver.Fault
	}{
		{"502 with an HTML page", testserver.FaultStatus(http.StatusBadGateway, "text/html", "<h1>bad gateway</h1>")},
		{"503 without a body", testserver.FaultStatus(http.StatusServiceUnavailable, "", "")},
		{"connection closed", testserver.FaultCloseConn()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newPKCEFixture(t)
			fx.as.SetTokenFault(tc.fault)
			_, err := fx.flow(t).Token(t.Context(), fx.cfg, &oauth2.Token{AccessToken: "old", RefreshToken: "rt"})
			var te *authenticator.TokenError
			require.ErrorAs(t, err, &te)
			assert.Empty(t, te.ErrorCode)
			assert.Contains(t, err.Error(), "refreshing the login")
			assert.NotContains(t, err.Error(), "rt")
			assert.Zero(t, fx.opened.Load(), "no browser for a transient failure")
		})
	}
}

func TestPKCEConfigErrors(t *testing.T) {
	fx := newPKCEFixture(t)
	f := fx.flow(t)
	for _, tc := range []struct {
		name   string
		mutate func(*configstore.ClientConfig)
		want   error
		text   string
	}{
		{"no client id", func(c *configstore.ClientConfig) { c.ClientID = "" }, authenticator.ErrNoClientID, ""},
		{"no authorization endpoint", func(c *configstore.ClientConfig) { c.AuthorizationEndpoint = "" }, authenticator.ErrNoEndpoint, "authorization endpoint"},
		{"no token endpoint", func(c *configstore.ClientConfig) { c.TokenEndpoint = "" }, authenticator.ErrNoTokenEndpoint, ""},
		{"bad authorization endpoint", func(c *configstore.ClientConfig) { c.AuthorizationEndpoint = "ftp://x" }, nil, "authorization endpoint"},
		{"redirect not loopback", func(c *configstore.ClientConfig) { c.RedirectURI = "http://example.com:8080/cb" }, nil, "loopback"},
		{"redirect https", func(c *configstore.ClientConfig) { c.RedirectURI = "https://localhost:8080/cb" }, nil, "loopback"},
		{"redirect without port", func(c *configstore.ClientConfig) { c.RedirectURI = "http://localhost/cb" }, nil, "with a port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fx.cfg.Clone()
			tc.mutate(cfg)
			_, err := f.Token(t.Context(), cfg, nil)
			require.Error(t, err)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			}
			require.ErrorContains(t, err, tc.text)
		})
	}
	assert.Zero(t, fx.opened.Load())

	prompter := &loginui.Terminal{Out: fx.out}
	for name, c := range map[string]authenticator.PKCEConfig{
		"redirect not loopback":  {Prompter: prompter, RedirectURI: "http://example.com:1/cb"},
		"redirect without port":  {Prompter: prompter, RedirectURI: "http://localhost/cb"},
		"bad authorization URL":  {Prompter: prompter, AuthorizationEndpoint: "not a url"},
		"negative timeout":       {Prompter: prompter, Timeout: -time.Second},
		"no prompter":            {},
		"no prompter, all fine":  {ClientID: "cli", Timeout: time.Minute},
		"ftp authorization URL":  {Prompter: prompter, AuthorizationEndpoint: "ftp://x/auth"},
		"redirect with userinfo": {Prompter: prompter, RedirectURI: "http://u:p@localhost:1/cb"},
	} {
		f, err := authenticator.NewPKCEFlow(c)
		require.Error(t, err, name)
		assert.Nil(t, f, name)
		assert.Contains(t, err.Error(), "authenticator: ", name)
	}
}

func TestPKCEFlowDefaults(t *testing.T) {
	f, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{Prompter: &loginui.Terminal{}, ClientID: " "})
	require.NoError(t, err, "a blank client id means the store's")
	d, ok := authenticator.FlowTimeout(f)
	require.True(t, ok, "the Keeper gives a browser login its own timeout")
	assert.Equal(t, authenticator.DefaultLoginTimeout, d, "a zero timeout is the default")
	assert.Equal(t, 2*time.Minute, authenticator.DefaultLoginTimeout)
	id, ok := authenticator.FlowClientID(f)
	require.True(t, ok)
	assert.Empty(t, id)
	assert.Equal(t, "http://localhost:53593/callback", authenticator.DefaultRedirectURI)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// tokenFront starts an HTTP front for fx's token endpoint and returns its
// URL: each request goes on to the server; before runs with the request's
// form first, and when drop says so for the form, the server's answer is
// lost (the connection closes without it).
func (fx *pkceFixture) tokenFront(t *testing.T, before func(url.Values), drop func(url.Values) bool) string {
	t.Helper()
	target := fx.as.TokenURL()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if before != nil {
			before(form)
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if drop != nil && drop(form) {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(front.Close)
	return front.URL
}
