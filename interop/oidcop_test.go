package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// The real OpenID provider of the device-flow tests: zitadel/oidc's OP
// (pkg/op) with an in-memory storage, in the nested module ./oidcop, which
// the tests build and run as a child process. A module of its own because
// zitadel/oidc raises x/text and OpenTelemetry, which this module shares
// with the library and with Hydra.
const (
	oidcopDir = "oidcop"
	// oidcopBinEnv names a prebuilt binary; by default the tests build
	// oidcopBinDefault (go build is incremental: a second run only links).
	oidcopBinEnv     = "OIDCOP_BIN"
	oidcopBinDefault = ".bin/oidcop"
	// oidcopStartTimeout bounds the wait for the "serving" line.
	oidcopStartTimeout = 30 * time.Second
	oidcopStopTimeout  = 5 * time.Second

	opClientID       = "flytectl"
	opResourceServer = "flyteadmin"
	opUser           = "alice"
)

var (
	oidcopBuild sync.Once
	oidcopPath  string
	oidcopErr   error
)

// oidcopBinary builds the provider once per run.
func oidcopBinary() (string, error) {
	oidcopBuild.Do(func() {
		if p := os.Getenv(oidcopBinEnv); p != "" {
			oidcopPath, oidcopErr = filepath.Abs(p)
			return
		}
		p, err := filepath.Abs(oidcopBinDefault)
		if err != nil {
			oidcopErr = err
			return
		}
		// `go test` puts the go command of its own toolchain first in PATH.
		cmd := exec.Command("go", "build", "-o", p, ".")
		cmd.Dir = oidcopDir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			oidcopErr = fmt.Errorf("build the OpenID provider (cd interop/%s && go build): %w\n%s", oidcopDir, err, out.String())
			return
		}
		oidcopPath = p
	})
	return oidcopPath, oidcopErr
}

// oidcProvider is a running provider, its discovery document and the
// credentials of its one user and its resource server.
type oidcProvider struct {
	issuer         string
	tokenURL       string
	deviceURL      string
	introspectURL  string
	password       string
	resourceSecret string
	http           *http.Client
	log            *testserver.LogBuffer
}

// startOIDCProvider starts the provider with extra flags and stops it when
// the test ends, checking that its process is gone.
func startOIDCProvider(t *testing.T, flags ...string) *oidcProvider {
	t.Helper()
	bin, err := oidcopBinary()
	require.NoError(t, err)
	password, err := randomHex(12)
	require.NoError(t, err)
	secret, err := randomHex(16)
	require.NoError(t, err)
	p := &oidcProvider{
		password: password, resourceSecret: secret,
		http: &http.Client{Timeout: hydraRequestTimeout, Transport: &http.Transport{Proxy: nil}},
		log:  new(testserver.LogBuffer),
	}
	t.Cleanup(p.http.CloseIdleConnections)

	args := append([]string{"-client", opClientID, "-resource-server", opResourceServer,
		"-resource-secret", secret, "-user", opUser, "-password", password}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = p.log
	// A pipe of our own rather than StdoutPipe: its reader may outlive
	// cmd.Wait, which would close StdoutPipe's under a reading goroutine.
	stdout, childOut, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout = childOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	_ = childOut.Close() // the child has its own descriptor
	if err != nil {
		_ = stdout.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		pid := cmd.Process.Pid
		_ = signalGroup(pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(oidcopStopTimeout):
			_ = signalGroup(pid, syscall.SIGKILL)
			<-exited
		}
		require.NoError(t, processGone(pid))
		if t.Failed() {
			t.Logf("OpenID provider log:\n%s", p.log.String())
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		// Drain what follows the first line, so the child never blocks.
		_, _ = io.Copy(io.Discard, stdout)
		_ = stdout.Close()
	}()
	select {
	case line, ok := <-lines:
		require.True(t, ok, "the OpenID provider exited before serving: %s", p.log.String())
		var found bool
		p.issuer, found = strings.CutPrefix(line, "oidcop: serving ")
		require.True(t, found, "unexpected first line %q", line)
	case <-time.After(oidcopStartTimeout):
		t.Fatalf("the OpenID provider did not start within %v: %s", oidcopStartTimeout, p.log.String())
	}

	var disc struct {
		TokenEndpoint               string   `json:"token_endpoint"`
		DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
		IntrospectionEndpoint       string   `json:"introspection_endpoint"`
		GrantTypesSupported         []string `json:"grant_types_supported"`
	}
	p.getJSON(t, p.issuer+"/.well-known/openid-configuration", &disc)
	require.Contains(t, disc.GrantTypesSupported, testserver.DeviceCodeGrantType, "the provider must offer the device grant")
	p.tokenURL, p.deviceURL, p.introspectURL = disc.TokenEndpoint, disc.DeviceAuthorizationEndpoint, disc.IntrospectionEndpoint
	return p
}

func (p *oidcProvider) getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := p.http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

func (p *oidcProvider) post(t *testing.T, path string) {
	t.Helper()
	resp, err := p.http.Post(p.issuer+path, "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "POST %s", path)
}

// ExpireAccessTokens makes the provider consider every access token it
// issued so far expired.
func (p *oidcProvider) ExpireAccessTokens(t *testing.T) { p.post(t, "/testing/expire-access-tokens") }

// RevokeRefreshTokens makes the provider forget every refresh token.
func (p *oidcProvider) RevokeRefreshTokens(t *testing.T) { p.post(t, "/testing/revoke-refresh-tokens") }

// opStats are the provider's counters.
type opStats struct {
	DeviceAuthorizations int `json:"device_authorizations"`
	Approvals            int `json:"approvals"`
	AccessTokens         int `json:"access_tokens"`
	Refreshes            int `json:"refreshes"`
	DevicePolls          int `json:"device_polls"`
}

func (p *oidcProvider) Stats(t *testing.T) opStats {
	t.Helper()
	var s opStats
	p.getJSON(t, p.issuer+"/testing/stats", &s)
	return s
}

// Decide plays the person on another device: open the verification URL
// the flow showed, sign in, and allow or deny on the confirmation page,
// through the provider's own pages, with cookies, as a browser would.
func (p *oidcProvider) Decide(t *testing.T, verificationURL string, allow bool) {
	t.Helper()
	u, err := url.Parse(verificationURL)
	require.NoError(t, err)
	require.Equal(t, p.issuer, u.Scheme+"://"+u.Host, "the verification URL is the provider's")
	userCode := u.Query().Get("user_code")
	require.NotEmpty(t, userCode, "verification_uri_complete carries the user code")

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Timeout: hydraRequestTimeout, Jar: jar, Transport: p.http.Transport}

	page := func(resp *http.Response, err error) string {
		t.Helper()
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", resp.Request.Method, resp.Request.URL.Path, body)
		return string(body)
	}
	require.Contains(t, page(browser.Get(verificationURL)), userCode, "the sign-in page shows the code")
	confirm := page(browser.PostForm(p.issuer+"/device/login", url.Values{
		"user_code": {userCode}, "username": {opUser}, "password": {p.password},
	}))
	require.Contains(t, confirm, opClientID, "the confirmation page names the client")
	action, want := "deny", "denied"
	if allow {
		action, want = "allow", "allowed"
	}
	require.Contains(t, page(browser.PostForm(p.issuer+"/device/confirm", url.Values{"action": {action}})), want)
}

// Validate implements testserver.TokenValidator through the provider's
// introspection endpoint (RFC 7662), authenticated as the resource server:
// a token is accepted exactly when the provider says it is active.
func (p *oidcProvider) Validate(ctx context.Context, token string) (testserver.TokenInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.introspectURL,
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return testserver.TokenInfo{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(opResourceServer), url.QueryEscape(p.resourceSecret))
	resp, err := p.http.Do(req)
	if err != nil {
		return testserver.TokenInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return testserver.TokenInfo{}, fmt.Errorf("introspection answered HTTP %d", resp.StatusCode)
	}
	var in struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		Exp      int64  `json:"exp"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&in); err != nil {
		return testserver.TokenInfo{}, fmt.Errorf("introspection answer: %w", err)
	}
	if !in.Active {
		return testserver.TokenInfo{}, fmt.Errorf("%w: the provider says it is not active", testserver.ErrTokenInvalid)
	}
	info := testserver.TokenInfo{ClientID: in.ClientID, Scopes: strings.Fields(in.Scope)}
	if in.Exp > 0 {
		info.ExpiresAt = time.Unix(in.Exp, 0)
	}
	return info, nil
}

// promptWatcher is the flow's prompt writer: it keeps what was shown and
// hands the verification URLs to the test as they appear.
type promptWatcher struct {
	mu   sync.Mutex // guards b
	b    strings.Builder
	urls chan string
}

func newPromptWatcher() *promptWatcher { return &promptWatcher{urls: make(chan string, 4)} }

func (w *promptWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	for _, line := range strings.Split(string(p), "\n") {
		if f := strings.TrimSpace(line); strings.HasPrefix(f, "http://") || strings.HasPrefix(f, "https://") {
			w.urls <- f
		}
	}
	return len(p), nil
}

func (w *promptWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// NextURL waits for the next verification URL shown.
func (w *promptWatcher) NextURL(t *testing.T) string {
	t.Helper()
	select {
	case u := <-w.urls:
		return u
	case <-time.After(callTimeout):
		t.Fatalf("no verification URL was shown; the prompt so far:\n%s", w.String())
		return ""
	}
}
