//go:build unix

package main

// These tests prove, from a user's side, that `grpcauth token`, `login` and
// `logout` go through grpcauth.New's one assembly path: behind an IAP-like
// proxy with a proxyCommand, the AuthMetadataService RPCs, the token
// request (and the device authorization) pass the proxy, and a proxy token
// the proxy refuses is replaced by one more run of the command; `token
// --timeout` bounds the token request of every flow.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

const (
	// epProxyPrefix starts every proxy token a counting command prints.
	epProxyPrefix = "pxtokZq7-"
	// epPrompt is how soon a command bounded by --timeout 300ms must be
	// over (the commands sleep 4 s).
	epPrompt = 3 * time.Second
)

func epProxyToken(n int) string { return epProxyPrefix + strconv.Itoa(n) }

// epScript writes an executable shell script with body and returns its path.
func epScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cmd.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	return path
}

// epCommand is a proxy command that prints epProxyToken(1), (2), ... on
// successive runs, across processes.
type epCommand struct {
	t     *testing.T
	path  string
	count string
}

func newEPCommand(t *testing.T) *epCommand {
	t.Helper()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	path := filepath.Join(dir, "proxy-token.sh")
	body := fmt.Sprintf("#!/bin/sh\nn=$(cat '%[1]s' 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > '%[1]s'\nprintf '%[2]s%%s\\n' \"$n\"\n", count, epProxyPrefix)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o700))
	return &epCommand{t: t, path: path, count: count}
}

func (c *epCommand) runs() int {
	b, err := os.ReadFile(c.count)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(c.t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(c.t, err)
	return n
}

// set makes the next run print epProxyToken(n+1): a command such as
// gcloud that hands out a cached token the proxy already refuses.
func (c *epCommand) set(n int) {
	require.NoError(c.t, os.WriteFile(c.count, []byte(strconv.Itoa(n)+"\n"), 0o600))
}

// epConfigFile writes a Flyte config file whose admin section holds lines
// (YAML, one key a line) and returns its path.
func epConfigFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "admin:\n"
	for _, l := range lines {
		yaml += "  " + l + "\n"
	}
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return path
}

// epArgv is a YAML flow list of argv.
func epArgv(argv ...string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// epProxy is an IAP-like proxy that allows the first nine tokens of an
// epCommand.
func epProxy(t *testing.T) *testserver.Proxy {
	t.Helper()
	px, err := testserver.NewProxy()
	require.NoError(t, err)
	t.Cleanup(px.Close)
	for i := 1; i <= 9; i++ {
		px.Allow(epProxyToken(i))
	}
	return px
}

// epResult is how a command line ended.
type epResult struct {
	code        int
	out, errOut string
}

// epStart runs a command line in-process, writing its stderr to stderr
// as well, and sends its result when it ends.
func epStart(env environment, stderr *epStderr, args ...string) <-chan epResult {
	done := make(chan epResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		code := run(ctx, args, &out, stderr, env)
		done <- epResult{code: code, out: out.String(), errOut: stderr.String()}
	}()
	return done
}

// epStderr is a command's standard error. With a DeviceServer, it is also
// the person who approves every user code shown on it, as soon as it is
// shown.
type epStderr struct {
	dev *testserver.DeviceServer // nil: approve nothing

	mu       sync.Mutex // guards the fields below
	buf      bytes.Buffer
	approved map[string]bool
	err      error
}

func (s *epStderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if s.dev == nil {
		return len(p), nil
	}
	for _, code := range s.dev.UserCodes() {
		if !s.approved[code] && strings.Contains(s.buf.String(), code) {
			if s.approved == nil {
				s.approved = make(map[string]bool)
			}
			s.approved[code] = true
			if err := s.dev.Approve(code); err != nil && s.err == nil {
				s.err = err
			}
		}
	}
	return len(p), nil
}

func (s *epStderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *epStderr) approveErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// epWait waits for a command line started by epStart.
func epWait(t *testing.T, done <-chan epResult) epResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not end")
		return epResult{}
	}
}

// TestEntryTokenProxyTokenOnEveryRequest: `grpcauth token` with a
// proxyCommand behind the proxy: the metadata RPCs and the token request
// pass it; a proxy token it refuses is replaced by one more run.
func TestEntryTokenProxyTokenOnEveryRequest(t *testing.T) {
	px := epProxy(t)
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	tokenFront, err := px.FrontHTTP(tokens.URL(), nil)
	require.NoError(t, err)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokenFront + testserver.TokenPath}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	front, err := px.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	cmd := newEPCommand(t)
	cfg := epConfigFile(t, "endpoint: dns:///"+front, "insecure: true", "authType: ClientSecret", "clientId: "+clientID,
		"proxyCommand: "+epArgv(cmd.path, "--audience", "iap"))
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret})

	code, out, errOut := runCmd(t, env, "token", "--config", cfg)
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	_, err = tokens.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err, "the printed token is one the token server issued")
	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth2Calls, publicCalls}, "both metadata RPCs passed the proxy and were answered")
	assert.EqualValues(t, 1, tokens.Issued(), "the token request passed the proxy")
	assert.Zero(t, px.Rejected(), "no request went without a valid proxy token")
	assert.GreaterOrEqual(t, px.Passed(), int64(3), "the metadata RPCs (Flyte 2's, refused by FlyteAdmin, then Flyte 1's) and the token request")
	assert.Equal(t, 1, cmd.runs())
	assert.NotContains(t, errOut, epProxyPrefix)

	// The command first hands out the token the proxy now refuses.
	px.Expire(epProxyToken(1))
	cmd.set(0)
	code, out, errOut = runCmd(t, env, "token", "--config", cfg)
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	_, err = tokens.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)
	assert.Equal(t, 2, cmd.runs(), "the refused token, then one more run")
	// Both metadata RPCs may go out at once with the refused token.
	assert.Contains(t, []int64{1, 2}, px.Rejected())
	oauth2Calls, publicCalls = admin.MetadataCalls()
	assert.Equal(t, [2]int64{2, 2}, [2]int64{oauth2Calls, publicCalls})
	assert.EqualValues(t, 2, tokens.Issued())
	assert.NotContains(t, errOut, epProxyPrefix)
}

// TestEntryTokenTimeout: `grpcauth token --timeout` bounds the token
// request of client credentials (a token server that never answers), of
// an external command and of the proxy command (each sleeping 4 s).
func TestEntryTokenTimeout(t *testing.T) {
	sleeper := epScript(t, "sleep 4\nprintf never-printed-token")
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	tokens.SetFault(testserver.FaultHang())
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	endpoint := "endpoint: dns:///" + admin.Addr()
	tests := []struct {
		name  string
		keys  []string
		flags []string
	}{
		{name: "client credentials", keys: []string{endpoint, "insecure: true", "authType: ClientSecret", "clientId: " + clientID}},
		{name: "external command", keys: []string{endpoint, "insecure: true", "authType: ExternalCommand", "command: " + epArgv(sleeper, "--secret-arg")}},
		{name: "proxy command", keys: []string{endpoint, "insecure: true", "authType: ClientSecret", "clientId: " + clientID, "proxyCommand: " + epArgv(sleeper, "--secret-arg")}},
		{name: "proxy command, --proxy", keys: []string{endpoint, "insecure: true", "proxyCommand: " + epArgv(sleeper, "--secret-arg")}, flags: []string{"--proxy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret})
			args := append([]string{"token", "--config", epConfigFile(t, tt.keys...), "--timeout", "300ms"}, tt.flags...)
			done := epStart(env, &epStderr{}, args...)
			var r epResult
			select {
			case r = <-done:
			case <-time.After(epPrompt):
				t.Fatalf("grpcauth token --timeout 300ms did not end within %s", epPrompt)
			}
			t.Logf("stderr: %s", r.errOut)
			assert.Equal(t, exitFail, r.code)
			assert.Empty(t, r.out)
			assert.Regexp(t, `(?i)deadline|timed? ?out|timeout|killed`, r.errOut, "the error says the request timed out")
			for _, s := range []string{secret, "never-printed-token", "--secret-arg"} {
				assert.NotContains(t, r.errOut, s)
			}
		})
	}
}

// TestEntryLoginLogoutProxyTokenOnEveryRequest: `grpcauth login` (device
// code) and `grpcauth logout` with a proxyCommand behind the proxy: the
// metadata RPCs, the device authorization and the token polls pass it; a
// proxy token it refuses is replaced by one more run of the command.
func TestEntryLoginLogoutProxyTokenOnEveryRequest(t *testing.T) {
	px := epProxy(t)
	dev, err := testserver.NewDeviceServer(testserver.WithDeviceClient(publicClientID), testserver.WithDeviceInterval(0))
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	devFront, err := px.FrontHTTP(dev.URL(), nil)
	require.NoError(t, err)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(dev),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
			TokenEndpoint:               devFront + testserver.DeviceTokenPath,
			DeviceAuthorizationEndpoint: devFront + testserver.DeviceAuthorizationPath,
		}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{ClientId: publicClientID}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	front, err := px.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	cmd := newEPCommand(t)
	cfg := epConfigFile(t, "endpoint: dns:///"+front, "insecure: true", "authType: DeviceFlow",
		"deviceFlowConfig:", "  pollInterval: 20ms", "proxyCommand: "+epArgv(cmd.path, "--audience", "iap"))
	dir := filepath.Join(t.TempDir(), "tokens")
	login := func(t *testing.T) {
		t.Helper()
		stderr := &epStderr{dev: dev}
		r := epWait(t, epStart(fakeEnv(nil), stderr, "login", "--config", cfg, "--token-cache-dir", dir))
		require.NoError(t, stderr.approveErr())
		require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.out, r.errOut)
		assert.Contains(t, r.out, "Logged in to dns:///"+front+" as client "+publicClientID)
		assert.NotContains(t, r.out+r.errOut, epProxyPrefix)
	}

	login(t)
	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth2Calls, publicCalls}, "both metadata RPCs passed the proxy and were answered")
	assert.EqualValues(t, 1, dev.Authorizations(), "the device authorization passed the proxy")
	assert.EqualValues(t, 1, dev.Issued(), "the token poll passed the proxy")
	assert.Zero(t, px.Rejected(), "no request went without a valid proxy token")
	assert.Equal(t, 1, cmd.runs())

	// Login again; the command first hands out the token the proxy now
	// refuses.
	px.Expire(epProxyToken(1))
	cmd.set(0)
	login(t)
	assert.Equal(t, 2, cmd.runs(), "the refused token, then one more run")
	assert.Contains(t, []int64{1, 2}, px.Rejected(), "both metadata RPCs may go out at once with the refused token")
	assert.EqualValues(t, 2, dev.Issued())
	oauth2Calls, publicCalls = admin.MetadataCalls()
	assert.Equal(t, [2]int64{2, 2}, [2]int64{oauth2Calls, publicCalls})

	// Logout asks the deployment for the client id, through the proxy; the
	// command first hands out the token the proxy now refuses.
	rejected := px.Rejected()
	px.Expire(epProxyToken(2))
	cmd.set(1)
	r := epWait(t, epStart(fakeEnv(nil), &epStderr{}, "logout", "--config", cfg, "--token-cache-dir", dir))
	require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.out, r.errOut)
	assert.Contains(t, r.out, "Logged out: removed the cached token for dns:///"+front+" (client "+publicClientID+")")
	assert.Equal(t, 3, cmd.runs(), "the refused token, then one more run")
	assert.Contains(t, []int64{rejected + 1, rejected + 2}, px.Rejected())
	_, publicCalls = admin.MetadataCalls()
	assert.EqualValues(t, 3, publicCalls, "logout's metadata RPC passed the proxy and was answered")

	// Logout again: the metadata RPCs pass with the command's current token.
	rejected = px.Rejected()
	r = epWait(t, epStart(fakeEnv(nil), &epStderr{}, "logout", "--config", cfg, "--token-cache-dir", dir))
	require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.out, r.errOut)
	assert.Contains(t, r.out, "No cached token")
	assert.Equal(t, 4, cmd.runs())
	assert.Equal(t, rejected, px.Rejected())
	_, publicCalls = admin.MetadataCalls()
	assert.EqualValues(t, 4, publicCalls)
}
