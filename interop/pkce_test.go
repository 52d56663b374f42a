package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/oauth"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
	"github.com/flyteauth/grpcauth/tokencache"
)

// loginAppListener is where the test's login and consent app listens. Hydra
// sends the browser there (URLS_LOGIN, URLS_CONSENT), and Hydra reads its
// configuration once, at start, from the environment of the test process:
// so the listener is opened, and the variables set, before TestMain starts
// Hydra. TestPKCEBrowserLogin serves it and closes it.
var loginAppListener net.Listener

func init() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("interop: listen for the login app: %v", err))
	}
	loginAppListener = l
	base := "http://" + l.Addr().String()
	for k, v := range map[string]string{
		"URLS_LOGIN":   base + "/login",
		"URLS_CONSENT": base + "/consent",
		"URLS_ERROR":   base + "/error",
	} {
		if err := os.Setenv(k, v); err != nil {
			panic(err)
		}
	}
}

// loginApp plays Hydra's login and consent app: it logs every browser in
// as one user and grants what the client asked for, or refuses consent
// when deny is set. It talks to Hydra's admin API.
type loginApp struct {
	deny     atomic.Bool
	logins   atomic.Int64
	consents atomic.Int64
	failure  atomic.Pointer[string] // the first thing that went wrong
}

const loginSubject = "flyte-user@example.com"

func (a *loginApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var redirect string
	var err error
	switch r.URL.Path {
	case "/login":
		a.logins.Add(1)
		redirect, err = a.admin(r.Context(), http.MethodPut,
			"/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(q.Get("login_challenge")),
			map[string]any{"subject": loginSubject, "remember": false})
	case "/consent":
		a.consents.Add(1)
		redirect, err = a.consent(r.Context(), q.Get("consent_challenge"))
	default:
		err = fmt.Errorf("hydra sent the browser to %s: %s", r.URL.Path, q.Get("error_description"))
	}
	if err != nil {
		msg := err.Error()
		a.failure.CompareAndSwap(nil, &msg)
		http.Error(w, msg, http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, redirect, http.StatusFound)
}

func (a *loginApp) consent(ctx context.Context, challenge string) (string, error) {
	path := "/admin/oauth2/auth/requests/consent"
	q := "?consent_challenge=" + url.QueryEscape(challenge)
	if a.deny.Load() {
		return a.admin(ctx, http.MethodPut, path+"/reject"+q, map[string]any{
			"error":             "access_denied",
			"error_description": "The user refused <b>consent</b>",
		})
	}
	var req struct {
		RequestedScope    []string `json:"requested_scope"`
		RequestedAudience []string `json:"requested_access_token_audience"`
	}
	if err := a.adminDo(ctx, http.MethodGet, path+q, nil, &req); err != nil {
		return "", err
	}
	return a.admin(ctx, http.MethodPut, path+"/accept"+q, map[string]any{
		"grant_scope":                 req.RequestedScope,
		"grant_access_token_audience": req.RequestedAudience,
		"remember":                    false,
	})
}

// admin sends a request to Hydra's admin API and returns the redirect_to
// of its answer.
func (a *loginApp) admin(ctx context.Context, method, path string, body any) (string, error) {
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.adminDo(ctx, method, path, body, &out); err != nil {
		return "", err
	}
	if out.RedirectTo == "" {
		return "", fmt.Errorf("%s %s: no redirect_to", method, path)
	}
	return out.RedirectTo, nil
}

func (a *loginApp) adminDo(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, hy.adminURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hy.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// tokenCounter stands in front of Hydra's token endpoint and counts the
// requests by grant type, so a test can tell a refresh from a login and
// see that a cached token caused none.
type tokenCounter struct {
	srv     *http.Server
	url     string
	code    atomic.Int64
	refresh atomic.Int64
	other   atomic.Int64
}

func newTokenCounter(t *testing.T) *tokenCounter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &tokenCounter{url: "http://" + l.Addr().String() + "/oauth2/token"}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: hydraRequestTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = c.srv.Close()
		<-done
	})
	return c
}

func (c *tokenCounter) total() int64 { return c.code.Load() + c.refresh.Load() + c.other.Load() }

func (c *tokenCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	switch form.Get("grant_type") {
	case "authorization_code":
		c.code.Add(1)
	case "refresh_token":
		c.refresh.Add(1)
	default:
		c.other.Add(1)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, hy.TokenURL(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := hy.http.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// createPublicClient registers a public client (no secret) that may use
// the authorization code grant with PKCE and refresh tokens, with the given
// access token lifetime (0: Hydra's default), and deletes it at the end.
func createPublicClient(t *testing.T, redirectURI string, lifetime time.Duration) string {
	t.Helper()
	suffix, err := randomHex(4)
	require.NoError(t, err)
	id := "pkce-" + sanitize(t.Name()) + "-" + suffix
	hy.adminJSON(t, http.MethodPost, "/admin/clients", map[string]any{
		"client_id":                  id,
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"scope":                      "openid offline",
		"redirect_uris":              []string{redirectURI},
		"audience":                   []string{"https://flyte.example"},
	}, http.StatusCreated, nil)
	t.Cleanup(func() { hy.deleteClient(t, id, true) })
	if lifetime > 0 {
		hy.adminJSON(t, http.MethodPut, "/admin/clients/"+url.PathEscape(id)+"/lifespans", map[string]any{
			"authorization_code_grant_access_token_lifespan":  lifetime.String(),
			"refresh_token_grant_access_token_lifespan":       lifetime.String(),
			"authorization_code_grant_refresh_token_lifespan": "1h",
			"refresh_token_grant_refresh_token_lifespan":      "1h",
		}, http.StatusOK, nil)
	}
	return id
}

// freeRedirectURI is a loopback redirect URI on a port that was free a
// moment ago.
func freeRedirectURI(t *testing.T) string {
	t.Helper()
	ports, err := freeLoopbackPorts(1)
	require.NoError(t, err)
	return fmt.Sprintf("http://127.0.0.1:%d/callback", ports[0])
}

// echoWith makes one protected unary echo call to admin with tok.
func echoWith(t *testing.T, admin *testserver.AdminServer, tok *oauth2.Token) error {
	t.Helper()
	conn, err := grpc.NewClient(admin.Addr(), append(admin.DialOptions(),
		grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: oauth2.StaticTokenSource(tok)}))...)
	require.NoError(t, err)
	defer conn.Close()
	return unary(t.Context(), testserver.NewEchoClient(conn), "pkce")
}

// TestPKCEBrowserLogin is the browser login end to end: a real headless
// Chromium opens the URL the flow prints, goes through Hydra's login and
// consent (played by loginApp), lands on the flow's callback page; the
// token it brings passes a protected echo call; a second cache reader
// reuses it without a token request; once it has expired the refresh
// token gets a new one without the browser; and a refused consent shows
// the error page.
func TestPKCEBrowserLogin(t *testing.T) {
	app := &loginApp{}
	appSrv := &http.Server{Handler: app, ReadHeaderTimeout: hydraRequestTimeout}
	appDone := make(chan struct{})
	go func() {
		defer close(appDone)
		_ = appSrv.Serve(loginAppListener)
	}()
	t.Cleanup(func() {
		_ = appSrv.Close()
		<-appDone
	})
	defer func() {
		if f := app.failure.Load(); f != nil {
			t.Errorf("login app: %s", *f)
		}
	}()

	browser := startChromium(t)
	s := newStack(t, stackSpec{})
	counter := newTokenCounter(t)

	// The Chromium driver is the flow's browser: it opens the printed URL
	// in a new tab, and the test reads the tab once the flow returns.
	var pages chan (<-chan shownPage)
	newFlow := func(t *testing.T, redirect string) (authenticator.Flow, *bytes.Buffer) {
		pages = make(chan (<-chan shownPage), 1)
		out := &bytes.Buffer{} // written only by the prompter under its lock; read after Token
		f, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{
			RedirectURI: redirect,
			Timeout:     60 * time.Second,
			Prompter: &loginui.Terminal{Out: out, Browser: func(_ context.Context, u string) error {
				pages <- browser.open(u)
				return nil
			}},
		})
		require.NoError(t, err)
		return f, out
	}
	shown := func(t *testing.T) shownPage {
		t.Helper()
		select {
		case ch := <-pages:
			select {
			case p := <-ch:
				require.NoError(t, p.Err, "the browser")
				return p
			case <-time.After(pageTimeout + 10*time.Second):
				t.Fatal("the browser did not finish the page")
			}
		default:
			t.Fatal("the flow never opened the browser")
		}
		return shownPage{}
	}

	newConfig := func(t *testing.T, lifetime time.Duration) *configstore.ClientConfig {
		redirect := freeRedirectURI(t)
		return &configstore.ClientConfig{
			TokenEndpoint:         counter.url,
			AuthorizationEndpoint: hy.publicURL + "/oauth2/auth",
			ClientID:              createPublicClient(t, redirect, lifetime),
			RedirectURI:           redirect,
			Scopes:                []string{"openid", "offline"},
			Audience:              "https://flyte.example",
		}
	}
	// noBrowser is a flow whose browser must not be needed.
	noBrowser := func(t *testing.T, cfg *configstore.ClientConfig) (authenticator.Flow, *atomic.Int64) {
		var opened atomic.Int64
		f, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{
			RedirectURI: cfg.RedirectURI,
			Timeout:     time.Second,
			Prompter: &loginui.Terminal{Out: io.Discard, Browser: func(context.Context, string) error {
				opened.Add(1)
				return nil
			}},
		})
		require.NoError(t, err)
		return f, &opened
	}
	endpoint := "dns:///" + s.admin.Addr()
	newKeeper := func(t *testing.T, cfg *configstore.ClientConfig, flow authenticator.Flow, dir string, opts ...authenticator.Option) *authenticator.Keeper {
		cache, err := tokencache.NewFile(tokencache.WithDir(dir))
		require.NoError(t, err)
		k, err := authenticator.New(endpoint, configstore.NewStatic(*cfg), flow, append([]authenticator.Option{authenticator.WithCache(cache)}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = k.Close() })
		return k
	}
	echoThrough := func(t *testing.T, k *authenticator.Keeper) error {
		conn, err := grpc.NewClient(s.admin.Addr(), append(s.admin.DialOptions(), grpc.WithPerRPCCredentials(k.PerRPCCredentials(false)))...)
		require.NoError(t, err)
		defer conn.Close()
		return unary(t.Context(), testserver.NewEchoClient(conn), "pkce")
	}

	t.Run("keeper, cache, refresh", func(t *testing.T) {
		cfg := newConfig(t, 10*time.Minute)
		dir := t.TempDir()
		flow, out := newFlow(t, cfg.RedirectURI)
		first := newKeeper(t, cfg, flow, dir)
		require.NoError(t, echoThrough(t, first), "a protected call after the browser login; flow output:\n%s", out)
		p := shown(t)
		assert.Equal(t, "Logged in", p.Title)
		assert.Contains(t, p.Message, "You are logged in")
		assert.True(t, strings.HasPrefix(p.URL, cfg.RedirectURI+"?"), "the browser ended on the callback: %s", p.URL)
		requirePNG(t, p.Screenshot, "pkce-success")
		assert.Contains(t, out.String(), hy.publicURL+"/oauth2/auth?", "the URL was printed")
		assert.Equal(t, int64(1), counter.code.Load())
		assert.Equal(t, int64(1), app.logins.Load())
		assert.Equal(t, int64(1), app.consents.Load())
		tok, err := first.Token(t.Context())
		require.NoError(t, err)
		in := hy.Introspect(t, tok.AccessToken)
		require.True(t, in.Active)
		assert.Equal(t, cfg.ClientID, in.ClientID)
		assert.Equal(t, loginSubject, in.Subject)
		require.NoError(t, first.Close())

		// A second Keeper on the same cache directory, as a second process
		// would have: the cached token, no token request, no browser.
		before := counter.total()
		flow2, opened2 := noBrowser(t, cfg)
		second := newKeeper(t, cfg, flow2, dir)
		require.NoError(t, echoThrough(t, second))
		assert.Equal(t, before, counter.total(), "no token request")
		assert.Equal(t, int64(1), second.Stats().CacheHits)
		assert.Zero(t, opened2.Load(), "no browser")
		require.NoError(t, second.Close())

		// A Keeper that finds the cached token expired uses the refresh
		// token, not the browser.
		files, err := tokencache.NewFile(tokencache.WithDir(dir))
		require.NoError(t, err)
		key, err := second.CacheKey(t.Context())
		require.NoError(t, err)
		cached, err := files.Load(t.Context(), key)
		require.NoError(t, err)
		require.NotNil(t, cached)
		cached.Expiry, cached.ExpiresIn = time.Now().Add(-time.Minute), 0
		require.NoError(t, files.Save(t.Context(), key, cached))
		flow3, opened3 := noBrowser(t, cfg)
		third := newKeeper(t, cfg, flow3, dir)
		require.NoError(t, echoThrough(t, third))
		assert.Equal(t, int64(1), counter.refresh.Load(), "one refresh grant")
		assert.Equal(t, int64(1), counter.code.Load(), "no new authorization code")
		assert.Equal(t, int64(1), app.logins.Load(), "no new browser login")
		assert.Zero(t, opened3.Load(), "no browser")
		assert.Zero(t, third.Stats().CacheHits)
	})

	t.Run("processes sharing the login", func(t *testing.T) {
		cfg := newConfig(t, 10*time.Minute)
		dir := t.TempDir()
		flow, out := newFlow(t, cfg.RedirectURI)
		first := newKeeper(t, cfg, flow, dir)
		require.NoError(t, echoThrough(t, first), "flow output:\n%s", out)
		assert.Equal(t, "Logged in", shown(t).Title)
		require.NoError(t, first.Close())
		codes, logins := counter.code.Load(), app.logins.Load()
		// A service that holds the login's first token in memory while
		// the others rotate it.
		flowS, openedS := noBrowser(t, cfg)
		service := newKeeper(t, cfg, flowS, dir)
		require.NoError(t, echoThrough(t, service))

		const cycles = 8
		for _, n := range []int{2, 3} {
			refreshes := counter.refresh.Load()
			requests := sharedLoginProcesses(t, n, cycles, endpoint, dir, cfg)
			grants := counter.refresh.Load() - refreshes
			t.Logf("%d processes × %d cycles: %d token requests, %d refresh grants at Hydra, %d logins", n, cycles, requests, grants, counter.code.Load()-codes)
			assert.Equal(t, int64(requests), grants, "each token request of the processes was a refresh grant")
		}
		assert.Equal(t, codes, counter.code.Load(), "no process logged in")
		assert.Equal(t, logins, app.logins.Load())

		// The service's token was revoked by the first refresh: its call
		// is rejected, and it takes the newest token from the cache, with
		// no token request of its own.
		refreshes := counter.refresh.Load()
		conn, err := grpc.NewClient(s.admin.Addr(), append(s.admin.DialOptions(),
			grpc.WithChainUnaryInterceptor(interceptor.UnaryClientInterceptor(service, interceptor.WithInsecure())))...)
		require.NoError(t, err)
		require.NoError(t, unary(t.Context(), testserver.NewEchoClient(conn), "service"))
		require.NoError(t, conn.Close())
		assert.Equal(t, refreshes, counter.refresh.Load(), "the newest token came from the cache")
		assert.Zero(t, openedS.Load(), "no browser")

		// Hydra revoked nothing: one more Keeper refreshes the login.
		flow2, opened := noBrowser(t, cfg)
		k := newKeeper(t, cfg, flow2, dir)
		require.NoError(t, k.RefreshCredentials(t.Context()))
		require.NoError(t, echoThrough(t, k))
		assert.Zero(t, opened.Load(), "no browser")
	})

	t.Run("expired token, rotated refresh token", func(t *testing.T) {
		const lifetime = 4 * time.Second
		cfg := newConfig(t, lifetime)
		flow, out := newFlow(t, cfg.RedirectURI)
		ctx := t.Context()
		codes, refreshes := counter.code.Load(), counter.refresh.Load()

		tok, err := flow.Token(ctx, cfg, nil)
		require.NoError(t, err, "flow output:\n%s", out)
		assert.Equal(t, "Logged in", shown(t).Title)
		require.NotEmpty(t, tok.RefreshToken, "offline scope gives a refresh token")
		require.NoError(t, echoWith(t, s.admin, tok))

		// After Hydra's expiry the refresh token is used, not the browser.
		waitInactive(t, tok.AccessToken, lifetime)
		require.Error(t, echoWith(t, s.admin, tok), "the expired token is refused")
		fresh, err := flow.Token(ctx, cfg, tok)
		require.NoError(t, err)
		assert.Equal(t, refreshes+1, counter.refresh.Load(), "one refresh grant")
		assert.Equal(t, codes+1, counter.code.Load(), "no new authorization code")
		select {
		case <-pages:
			t.Fatal("the refresh opened the browser")
		default:
		}
		require.NoError(t, echoWith(t, s.admin, fresh))

		// The old refresh token was rotated away: Hydra answers
		// invalid_grant and the flow logs in through the browser again.
		again, err := flow.Token(ctx, cfg, tok)
		require.NoError(t, err, "flow output:\n%s", out)
		assert.Equal(t, "Logged in", shown(t).Title)
		assert.Equal(t, codes+2, counter.code.Load(), "a new authorization code")
		require.NoError(t, echoWith(t, s.admin, again))
	})

	t.Run("grpcauth login and logout processes", func(t *testing.T) {
		cfg := newConfig(t, 10*time.Minute)
		s.admin.SetOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
			Issuer:                hy.publicURL + "/",
			AuthorizationEndpoint: cfg.AuthorizationEndpoint,
			TokenEndpoint:         cfg.TokenEndpoint,
		})
		s.admin.SetPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
			ClientId:    cfg.ClientID,
			RedirectUri: cfg.RedirectURI,
			Scopes:      cfg.Scopes,
			Audience:    cfg.Audience,
		})
		bin := buildCommand(t)
		dir := t.TempDir()
		flags := []string{"--endpoint", endpoint, "--ca-cert", s.caFile, "--auth-type", "Pkce", "--token-cache-dir", dir}
		codes := counter.code.Load()

		// `grpcauth login --no-browser` prints the URL; the test's
		// Chromium plays the person who opens it.
		ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
		defer cancel()
		login := exec.CommandContext(ctx, bin, append([]string{"login", "--no-browser"}, flags...)...)
		login.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
		var stdout, stderr bytes.Buffer
		errPipe, err := login.StderrPipe()
		require.NoError(t, err)
		login.Stdout = &stdout
		require.NoError(t, login.Start())
		var page <-chan shownPage
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			stderr.WriteString(line + "\n")
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), hy.publicURL+"/oauth2/auth?"); ok && page == nil {
				page = browser.open(hy.publicURL + "/oauth2/auth?" + u)
			}
		}
		require.NoError(t, login.Wait(), "grpcauth login: stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
		require.NotNil(t, page, "grpcauth login printed no URL:\n%s", &stderr)
		p := <-page
		require.NoError(t, p.Err)
		assert.Equal(t, "Logged in", p.Title)
		assert.Contains(t, stdout.String(), "Logged in to "+endpoint+" as client "+cfg.ClientID)
		assert.Equal(t, codes+1, counter.code.Load())

		// Another process's login serves this Keeper: no token request.
		before := counter.total()
		flow, opened := noBrowser(t, cfg)
		k := newKeeper(t, cfg, flow, dir)
		require.NoError(t, echoThrough(t, k))
		assert.Equal(t, before, counter.total(), "no token request")
		assert.Equal(t, int64(1), k.Stats().CacheHits)
		assert.Zero(t, opened.Load())

		code, out, errOut := runCommand(t, bin, nil, append([]string{"logout"}, flags...)...)
		require.Equal(t, 0, code, "grpcauth logout: %s", errOut)
		assert.Contains(t, out, "Logged out")
		// Hydra's discovery document names its revocation endpoint.
		assert.Contains(t, out, "Revoked the refresh token and the access token at ")
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		require.NoError(t, err)
		assert.Empty(t, files, "the token file is gone")
	})

	t.Run("denied consent", func(t *testing.T) {
		app.deny.Store(true)
		defer app.deny.Store(false)
		redirect := freeRedirectURI(t)
		clientID := createPublicClient(t, redirect, 0)
		cfg := &configstore.ClientConfig{
			TokenEndpoint:         counter.url,
			AuthorizationEndpoint: hy.publicURL + "/oauth2/auth",
			ClientID:              clientID,
			RedirectURI:           redirect,
			Scopes:                []string{"openid", "offline"},
		}
		flow, _ := newFlow(t, redirect)
		before := counter.total()
		_, err := flow.Token(t.Context(), cfg, nil)
		var ae *authenticator.AuthorizationError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "access_denied", ae.ErrorCode)
		p := shown(t)
		assert.Equal(t, "Login failed", p.Title)
		assert.Contains(t, p.HTML, "access_denied")
		assert.NotContains(t, p.HTML, "<b>consent</b>", "the description is escaped")
		requirePNG(t, p.Screenshot, "pkce-denied")
		assert.Equal(t, before, counter.total(), "no token request after a refusal")
	})
}

// waitInactive polls Hydra's introspection until token is no longer
// active; it expires after lifetime.
func waitInactive(t *testing.T, token string, lifetime time.Duration) {
	t.Helper()
	deadline := time.Now().Add(lifetime + 30*time.Second)
	for hy.Introspect(t, token).Active {
		if time.Now().After(deadline) {
			t.Fatal("the token never expired")
		}
		select {
		case <-t.Context().Done():
			t.Fatal(errors.New("test ended"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
