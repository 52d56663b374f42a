package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
	"github.com/flyteauth/grpcauth/tokencache"
)

const publicClientID = "flytectl"

// loginServers are a fake authorization server and an admin server on
// loopback TCP (plaintext) whose metadata points at it.
type loginServers struct {
	auth     *testserver.AuthorizationServer
	admin    *testserver.AdminServer
	redirect string
}

func newLoginServers(t *testing.T) *loginServers {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	s := &loginServers{redirect: redirect}
	s.auth, err = testserver.NewAuthorizationServer(testserver.WithPublicClient(publicClientID, redirect))
	require.NoError(t, err)
	t.Cleanup(s.auth.Close)
	s.admin, err = testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(s.auth),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
			Issuer:                s.auth.Issuer(),
			AuthorizationEndpoint: s.auth.AuthorizeURL(),
			TokenEndpoint:         s.auth.TokenURL(),
		}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
			ClientId:    publicClientID,
			RedirectUri: redirect,
			Scopes:      []string{"openid", "offline"},
		}))
	require.NoError(t, err)
	t.Cleanup(s.admin.Close)
	return s
}

// browse makes a "browser" that loads the URL, follows redirects and
// hands the last page's body to seen.
func browse(t *testing.T, seen func(page []byte)) func(context.Context, string) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	t.Cleanup(client.CloseIdleConnections)
	return func(ctx context.Context, u string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		page, err := io.ReadAll(resp.Body)
		seen(page)
		return err
	}
}

// followBrowser is a "browser" that loads the URL and follows redirects,
// and says how often it was opened.
func followBrowser(t *testing.T) (func(context.Context, string) error, func() int) {
	var opened int
	open := browse(t, func([]byte) {})
	return func(ctx context.Context, u string) error {
		opened++
		return open(ctx, u)
	}, func() int { return opened }
}

// pageBrowser is a "browser" that follows redirects and keeps the body of
// the last page it was shown.
func pageBrowser(t *testing.T) (func(context.Context, string) error, func() string) {
	var last string
	return browse(t, func(page []byte) { last = string(page) }), func() string { return last }
}

func TestLoginLogout(t *testing.T) {
	s := newLoginServers(t)
	dir := filepath.Join(t.TempDir(), "tokens")
	browser, opened := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	common := []string{"--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce", "--token-cache-dir", dir}

	code, out, errOut := runCmd(t, env, append([]string{"login"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "Logged in to "+s.admin.Addr()+" as client "+publicClientID)
	assert.Contains(t, out, "with a refresh token")
	assert.Contains(t, errOut, s.auth.AuthorizeURL()+"?", "the URL is printed on stderr")
	assert.Equal(t, 1, opened())
	assert.Equal(t, int64(1), s.auth.CodeGrants())
	assert.Equal(t, "openid offline", s.auth.LastAuthorization().Get("scope"))

	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	var tokens int
	for _, f := range files {
		if filepath.Ext(f.Name()) == ".json" {
			tokens++
			info, err := f.Info()
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
			data, err := os.ReadFile(filepath.Join(dir, f.Name()))
			require.NoError(t, err)
			assert.NotContains(t, out+errOut, string(data), "no token on the terminal")
		}
	}
	assert.Equal(t, 1, tokens, "one token file")

	// Logging in again replaces the token, even though it is still valid.
	code, out, errOut = runCmd(t, env, append([]string{"login"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, 2, opened())

	cache, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	kept, err := cache.Load(t.Context(), loginCacheKey(t, s.admin.Addr()))
	require.NoError(t, err)
	require.NotNil(t, kept)
	_, err = s.auth.Validate(t.Context(), kept.AccessToken)
	require.NoError(t, err)

	code, out, errOut = runCmd(t, env, append([]string{"logout"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	_, err = s.auth.Validate(t.Context(), kept.AccessToken)
	assert.Error(t, err, "the access token is revoked at the server")
	assert.Contains(t, out, "Logged out")
	assert.Contains(t, out, "Revoked the refresh token and the access token at "+s.auth.Issuer()+testserver.RevokePath+".")
	assert.EqualValues(t, 1, s.auth.Revocations(), "the refresh token revoked the login; the access token went with it")
	code, out, _ = runCmd(t, env, append([]string{"logout"}, common...)...)
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "No cached token")
}

func TestLoginDenied(t *testing.T) {
	s := newLoginServers(t)
	s.auth.SetConsent(testserver.ConsentDeny)
	browser, _ := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	dir := t.TempDir()
	code, out, errOut := runCmd(t, env, "login", "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce", "--token-cache-dir", dir)
	require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "OAuth error: access_denied")
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, f := range files {
		assert.NotEqual(t, ".json", filepath.Ext(f.Name()), "nothing cached")
	}
}

func TestLoginNeedsAnInteractiveFlow(t *testing.T) {
	code, _, errOut := runCmd(t, fakeEnv(nil), "login", "--endpoint", "127.0.0.1:1", "--auth-type", "ClientSecret")
	assert.Equal(t, exitFail, code, "a configuration fault, not a bad command line")
	assert.Contains(t, errOut, "login runs an interactive flow")
	assert.Contains(t, errOut, "Pkce")
	assert.Contains(t, errOut, "DeviceFlow")
	code, _, errOut = runCmd(t, fakeEnv(nil), "login", "--auth-type", "Pkce", "--timeout", "0s")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--timeout must be positive")
}

// The cache key holds the token endpoint the deployment names: logout
// without a server says it cannot tell which token to remove, and removes
// none.
func TestLogoutWithoutAServer(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, fakeEnv(nil), "logout", "--endpoint", "127.0.0.1:1", "--insecure", "--auth-type", "Pkce",
		"--client-id", "x", "--token-cache-dir", dir, "--timeout", "2s")
	assert.Equal(t, exitFail, code, "stdout:\n%s", out)
	assert.Contains(t, errOut, "cannot tell which token to remove")
	assert.Empty(t, out)
}

func TestLoginLogoutHelp(t *testing.T) {
	for _, cmd := range []string{"login", "logout"} {
		code, _, errOut := runCmd(t, fakeEnv(nil), cmd, "--help")
		assert.Equal(t, exitOK, code)
		assert.Contains(t, errOut, "-token-cache-dir")
	}
	code, out, _ := runCmd(t, fakeEnv(nil), "--help")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "grpcauth login")
	assert.Contains(t, out, "grpcauth logout")
}

func TestLoginDeviceFlow(t *testing.T) {
	dev, err := testserver.NewDeviceServer(testserver.WithDeviceClient(publicClientID), testserver.WithDeviceInterval(0))
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(dev),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
			TokenEndpoint:               dev.TokenURL(),
			DeviceAuthorizationEndpoint: dev.DeviceAuthorizationURL(),
		}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{ClientId: publicClientID}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)

	// The person approves the code once it is shown.
	approved := make(chan error, 1)
	go func() {
		for range 2000 {
			if codes := dev.UserCodes(); len(codes) > 0 {
				approved <- dev.Approve(codes[0])
				return
			}
			time.Sleep(5 * time.Millisecond) // polling for the code, bounded by the loop
		}
		approved <- fmt.Errorf("no user code was issued")
	}()
	dir := filepath.Join(t.TempDir(), "tokens")
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("admin:\n  deviceFlowConfig:\n    pollInterval: 20ms\n"), 0o600))
	code, out, errOut := runCmd(t, fakeEnv(nil), "login", "--config", cfgFile, "--endpoint", admin.Addr(), "--insecure", "--auth-type", "DeviceFlow", "--token-cache-dir", dir)
	require.NoError(t, <-approved)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "Logged in to "+admin.Addr()+" as client "+publicClientID)
	assert.Contains(t, errOut, dev.UserCodes()[0], "the code is shown to the person on stderr")
	assert.EqualValues(t, 1, dev.Issued())
	t.Logf("transcript:\n$ grpcauth login --auth-type DeviceFlow ...\n%s%s", errOut, out)
}

// pkceConfig.authParams reach the authorization request; a malformed one
// is an error that names it.
func TestLoginAuthParamsFromTheConfig(t *testing.T) {
	s := newLoginServers(t)
	browser, _ := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("admin:\n  pkceConfig:\n    authParams:\n      - login_hint=me@example.com\n      - acr_values=mfa\n"), 0o600))
	code, out, errOut := runCmd(t, env, "login", "--config", cfgFile, "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	q := s.auth.LastAuthorization()
	assert.Equal(t, "me@example.com", q.Get("login_hint"))
	assert.Equal(t, "mfa", q.Get("acr_values"))

	require.NoError(t, os.WriteFile(cfgFile, []byte("admin:\n  pkceConfig:\n    authParams: [nonsense]\n"), 0o600))
	code, _, errOut = runCmd(t, env, "login", "--config", cfgFile, "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, errOut, `pkceConfig.authParams: "nonsense" is not name=value`)
}

// loginCacheKey is the cache key of a browser login at endpoint, as the
// Keeper makes it (the deployment's token endpoint, client id and scopes).
func loginCacheKey(t *testing.T, endpoint string) string {
	t.Helper()
	files, err := tokencache.NewFile(tokencache.WithDir(t.TempDir()))
	require.NoError(t, err)
	c, err := grpcauth.New(grpcauth.Config{Endpoint: endpoint, Insecure: true, AuthType: grpcauth.AuthTypePkce}, grpcauth.WithTokenCache(files))
	require.NoError(t, err)
	defer c.Close()
	key, err := c.Authenticator.CacheKey(t.Context())
	require.NoError(t, err)
	return key
}

// authType DeviceFlow against a deployment whose authorization server has
// no device endpoint (FlyteAdmin's own): each command says so once, with
// what to use instead, in the config's words.
func TestDeviceFlowWithoutADeviceEndpoint(t *testing.T) {
	s := newLoginServers(t)
	for _, args := range [][]string{{"login"}, {"token", "--login"}} {
		code, out, errOut := runCmd(t, fakeEnv(nil), append(args, "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "DeviceFlow")...)
		assert.Equal(t, exitFail, code, "%v: stdout:\n%s\nstderr:\n%s", args, out, errOut)
		assert.Contains(t, errOut, "the deployment advertises no device authorization endpoint (RFC 8628)", args)
		assert.Contains(t, errOut, "use the browser login (authType: Pkce) or an identity provider that offers the device flow", args)
		assert.Equal(t, 1, strings.Count(errOut, "no device authorization endpoint"), "%v: said once:\n%s", args, errOut)
		assert.NotContains(t, errOut, "level=WARN", args)
		assert.NotContains(t, errOut, "authenticator: authenticator:", args)
		assert.NotContains(t, errOut, "With", "%v: no Go option in a message for the terminal", args)
	}
}

// pkceConfig.callbackPage replaces the page the browser shows at the end,
// with every field a server chose escaped; a page that cannot serve is an
// error naming the key before any login starts.
func TestLoginCallbackPageFromTheConfig(t *testing.T) {
	s := newLoginServers(t)
	browser, shown := pageBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	dir := t.TempDir()
	page := filepath.Join(dir, "page.html")
	require.NoError(t, os.WriteFile(page, []byte(`<html><body><h1>{{if .OK}}Welcome to {{.Endpoint}}{{else}}No luck: {{.Code}} / {{.Detail}}{{end}}</h1></body></html>`), 0o600))
	cfgFile := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("admin:\n  pkceConfig:\n    callbackPage: "+page+"\n"), 0o600))
	login := func() (int, string, string) {
		return runCmd(t, env, "login", "--config", cfgFile, "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce", "--token-cache-dir", filepath.Join(dir, "tokens"))
	}

	code, out, errOut := login()
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "<html><body><h1>Welcome to "+s.admin.Addr()+"</h1></body></html>", shown())

	s.auth.SetConsent(testserver.ConsentDeny)
	code, out, errOut = login()
	require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "<html><body><h1>No luck: access_denied / The resource owner denied the request &lt;script&gt;</h1></body></html>", shown())

	for name, tc := range map[string]struct {
		setup func(t *testing.T, path string)
		want  string
	}{
		"not a template":              {func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, []byte("{{if}}"), 0o600)) }, "is not an html/template"},
		"a field that does not exist": {func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, []byte("{{.User}}"), 0o600)) }, "the fields are .OK, .Title, .Message, .Code, .Detail and .Endpoint"},
		"missing":                     {func(*testing.T, string) {}, "no such file"},
		"a named pipe":                {mkfifo, "not a regular file"},
		"too large": {func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte("a"), 256<<10+1), 0o600))
		}, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "page.html")
			tc.setup(t, p)
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte("admin:\n  pkceConfig:\n    callbackPage: "+p+"\n"), 0o600))
			browser, opened := followBrowser(t)
			env := fakeEnv(nil)
			env.browser = browser
			code, out, errOut := runCmd(t, env, "login", "--config", cfg, "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce", "--token-cache-dir", t.TempDir())
			require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, errOut, "pkceConfig.callbackPage: ")
			assert.Contains(t, errOut, tc.want)
			assert.Contains(t, errOut, p, "the error names the file")
			assert.Zero(t, opened(), "no login started")
		})
	}
}
