//go:build unix

package grpcauth_test

// These tests prove, from a user's side, that grpcauth.New builds every
// part from a Config (keeper, proxy keeper of proxyCommand, config store,
// token HTTP client carrying the proxy token) and that the parts honour the
// options and end with one Close. connectauth/entrypoints_test.go and
// cmd/grpcauth/entrypoints_test.go prove the same of the other entry
// points.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

const (
	epClientID = "entry-client"
	epSecret   = "entry-s3cr3t-never-logged-7f1d"
	// epProxyPrefix starts every proxy token a counting command prints;
	// it must appear in no log.
	epProxyPrefix = "pxtokZq7-"
	// epTimeout is the token timeout of the timeout tests; epPrompt is how
	// soon a bounded request must be over (the commands sleep 4 s).
	epTimeout = 300 * time.Millisecond
	epPrompt  = 3 * time.Second
)

// epProxyToken is the n-th token of a counting proxy command.
func epProxyToken(n int) string { return epProxyPrefix + strconv.Itoa(n) }

// epScript writes an executable shell script with body and returns its path.
func epScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cmd.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	return path
}

// epCommand is a proxy command that prints epProxyToken(1), (2), ... on
// successive runs.
type epCommand struct {
	t     *testing.T
	argv  []string
	count string // the file holding how many times it ran
}

func newEPCommand(t *testing.T) *epCommand {
	t.Helper()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	path := filepath.Join(dir, "proxy-token.sh")
	body := fmt.Sprintf("#!/bin/sh\nn=$(cat '%[1]s' 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > '%[1]s'\nprintf '%[2]s%%s\\n' \"$n\"\n", count, epProxyPrefix)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o700))
	return &epCommand{t: t, argv: []string{path, "--audience", "iap"}, count: count}
}

// runs returns how many times the command ran (or the count set last).
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
// gcloud that hands out a cached token the proxy already considers
// expired.
func (c *epCommand) set(n int) {
	require.NoError(c.t, os.WriteFile(c.count, []byte(strconv.Itoa(n)+"\n"), 0o600))
}

// epDeployment is a FlyteAdmin and its token endpoint, both behind an
// IAP-like proxy that allows the first nine tokens of an epCommand.
type epDeployment struct {
	px     *testserver.Proxy
	tokens *testserver.TokenServer
	admin  *testserver.AdminServer
	front  string // the address to dial: the proxy's gRPC front
	// tokenURL is the token endpoint the admin server advertises: the
	// proxy's front of the token server.
	tokenURL string
}

func newEPDeployment(t *testing.T) *epDeployment {
	t.Helper()
	px, err := testserver.NewProxy()
	require.NoError(t, err)
	t.Cleanup(px.Close)
	for i := 1; i <= 9; i++ {
		px.Allow(epProxyToken(i))
	}
	tokens, err := testserver.NewTokenServer(testserver.WithClient(epClientID, epSecret))
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
	return &epDeployment{px: px, tokens: tokens, admin: admin, front: front, tokenURL: tokenFront + testserver.TokenPath}
}

// epDirect is a FlyteAdmin and its token endpoint with no proxy in front.
func epDirect(t *testing.T) (*testserver.TokenServer, *testserver.AdminServer) {
	t.Helper()
	tokens, err := testserver.NewTokenServer(testserver.WithClient(epClientID, epSecret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	return tokens, admin
}

func epCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// epLogged reports whether logs (JSON lines of testserver.LogBuffer) hold
// a record of level with message msg and, if given, attribute key = value.
func epLogged(t *testing.T, logs, level, msg string, kv ...string) bool {
	t.Helper()
	for line := range strings.Lines(logs) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "a log line: %s", line)
		if rec["level"] != level || rec["msg"] != msg {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			match = match && fmt.Sprint(rec[kv[i]]) == kv[i+1]
		}
		if match {
			return true
		}
	}
	return false
}

// epAccessToken is the bare access token the keeper holds.
func epAccessToken(t *testing.T, k *authenticator.Keeper) string {
	t.Helper()
	_, value, err := k.Credential(epCtx(t))
	require.NoError(t, err)
	token, ok := strings.CutPrefix(value, "Bearer ")
	require.True(t, ok)
	return token
}

// epCloseTwice closes c and requires the first Close to return within
// epPrompt, and a second one to be harmless.
func epCloseTwice(t *testing.T, closeFn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(epPrompt):
		t.Fatal("Close did not return promptly")
	}
	require.NoError(t, closeFn(), "a second Close is harmless")
}

// TestEntryNewProxyTokenOnEveryRequest: with proxyCommand, every request
// grpcauth.New's parts make passes the proxy: the AuthMetadataService RPCs,
// the token request and the calls; an expired proxy token is replaced by
// one more run of the command, whichever request meets the refusal; the
// logger sees the keepers at work and never a secret or token.
func TestEntryNewProxyTokenOnEveryRequest(t *testing.T) {
	d := newEPDeployment(t)
	cmd := newEPCommand(t)
	var logs testserver.LogBuffer
	cfg := grpcauth.Config{Endpoint: d.front, Insecure: true, ClientID: epClientID, ClientSecret: epSecret, ProxyCommand: cmd.argv}
	c, err := grpcauth.New(cfg, grpcauth.WithLogger(logs.Logger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NotNil(t, c.Proxy, "proxyCommand gives a proxy keeper")
	ctx := epCtx(t)
	echo := testserver.NewEchoClient(c.Conn)

	_, err = echo.Unary(ctx, "a")
	require.NoError(t, err)
	_, err = echo.Bidi(ctx, []string{"a", "b"})
	require.NoError(t, err)
	oauth2Calls, publicCalls := d.admin.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth2Calls, publicCalls}, "both metadata RPCs passed the proxy and were answered")
	assert.EqualValues(t, 1, d.tokens.Issued(), "the token request passed the proxy")
	assert.EqualValues(t, 2, d.admin.EchoCalls())
	assert.Zero(t, d.px.Rejected(), "no request went without a valid proxy token")
	assert.GreaterOrEqual(t, d.px.Passed(), int64(5), "2 metadata RPCs, 1 token request, 2 calls")
	assert.Equal(t, 1, cmd.runs(), "one run for all of them")

	// An API call meets the expiry.
	d.px.Expire(epProxyToken(1))
	_, err = echo.Unary(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, 2, cmd.runs(), "one more run of the command")
	assert.EqualValues(t, 1, d.px.Rejected())
	assert.EqualValues(t, 1, d.tokens.Issued(), "the access token was not touched")

	// A token request meets the expiry.
	d.px.Expire(epProxyToken(2))
	require.NoError(t, c.Authenticator.RefreshCredentials(ctx))
	assert.Equal(t, 3, cmd.runs(), "one more run of the command")
	assert.EqualValues(t, 2, d.px.Rejected())
	assert.EqualValues(t, 2, d.tokens.Issued(), "the token request passed on the retry")
	_, err = echo.Unary(ctx, "c")
	require.NoError(t, err)
	assert.Equal(t, 3, cmd.runs())

	// The metadata RPCs meet the expiry: a new client whose command first
	// hands out a token the proxy already refuses.
	d.px.Expire(epProxyToken(3))
	cmd.set(2)
	c2, err := grpcauth.New(cfg, grpcauth.WithLogger(logs.Logger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Close() })
	_, err = testserver.NewEchoClient(c2.Conn).Unary(ctx, "d")
	require.NoError(t, err)
	assert.Equal(t, 4, cmd.runs(), "the refused token, then one more run")
	// Both metadata RPCs go out at once with the refused token: one or
	// both are refused, and the command runs once for them.
	assert.Contains(t, []int64{3, 4}, d.px.Rejected())
	oauth2Calls, publicCalls = d.admin.MetadataCalls()
	assert.Equal(t, [2]int64{2, 2}, [2]int64{oauth2Calls, publicCalls}, "the new client's metadata RPCs were answered")
	assert.EqualValues(t, 3, d.tokens.Issued())

	// The logger saw both keepers, and nothing secret.
	out := logs.String()
	assert.True(t, epLogged(t, out, "DEBUG", "authenticator: requesting token", "token_url", d.tokenURL), "the flow's keeper logs its token request at debug level:\n%s", out)
	assert.True(t, epLogged(t, out, "DEBUG", "authenticator: running token command", "command", cmd.argv[0]), "the proxy keeper logs its runs:\n%s", out)
	for _, secret := range []string{epSecret, epProxyPrefix, epAccessToken(t, c.Authenticator), epAccessToken(t, c2.Authenticator), "iap"} {
		assert.NotContains(t, out, secret)
	}
}

// epFlows are the flows of the timeout tests: a token request that
// cannot finish by itself within 4 s.
var epFlows = []string{"client credentials", "external command", "proxy command"}

// epTimeoutOptions are the two ways of giving the token timeout.
var epTimeoutOptions = map[string]grpcauth.Option{
	"WithTokenTimeout":         grpcauth.WithTokenTimeout(epTimeout),
	"WithAuthenticatorOptions": grpcauth.WithAuthenticatorOptions(authenticator.WithTokenTimeout(epTimeout)),
}

// TestEntryNewTokenTimeoutAndLogger: the token timeout bounds the token
// request of every flow, the proxy command's included, given either way;
// the logger receives the keeper's records (the token request at debug
// level) and never the secret or a token.
func TestEntryNewTokenTimeoutAndLogger(t *testing.T) {
	sleeper := epScript(t, "sleep 4\nprintf never-printed-token")
	for _, flow := range epFlows {
		for via, timeoutOpt := range epTimeoutOptions {
			if flow == "proxy command" && via == "WithAuthenticatorOptions" {
				continue // the flow's Keeper only; the proxy keeper takes grpcauth.WithTokenTimeout
			}
			t.Run(flow+"/"+via, func(t *testing.T) {
				tokens, admin := epDirect(t)
				cfg := grpcauth.Config{Endpoint: admin.Addr(), Insecure: true, ClientID: epClientID, ClientSecret: epSecret}
				switch flow {
				case "client credentials":
					tokens.SetFault(testserver.FaultHang())
				case "external command":
					cfg = grpcauth.Config{Endpoint: admin.Addr(), Insecure: true, AuthType: grpcauth.AuthTypeExternalCommand, Command: []string{sleeper, "--secret-arg"}}
				case "proxy command":
					cfg.ProxyCommand = []string{sleeper, "--secret-arg"}
				}
				var logs testserver.LogBuffer
				c, err := grpcauth.New(cfg, timeoutOpt, grpcauth.WithLogger(logs.Logger()))
				require.NoError(t, err)
				defer func() { require.NoError(t, c.Close()) }()

				done := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_, err := testserver.NewEchoClient(c.Conn).Unary(ctx, "x")
					done <- err
				}()
				select {
				case err = <-done:
				case <-time.After(epPrompt):
					t.Fatalf("the call did not end within %s: the %s token request is not bounded by %s", epPrompt, flow, via)
				}
				require.Error(t, err)
				t.Logf("error: %v", err)
				switch flow {
				case "client credentials":
					assert.EqualValues(t, 1, tokens.Requests(), "the token request was sent")
					assert.Regexp(t, `(?i)deadline|timed? ?out|timeout`, err.Error(), "the error says the request timed out")
				case "proxy command":
					// The metadata RPC waits for the proxy credential: the
					// call's wait for the metadata and the command's run
					// end at the same time, and either may be reported.
					assert.Regexp(t, `killed|context deadline exceeded`, err.Error(), "the error says the command was killed or the wait ran out")
					assert.Zero(t, tokens.Requests())
				default:
					assert.Contains(t, err.Error(), "killed", "the error says the command was killed")
					assert.Zero(t, tokens.Requests())
				}
				assert.NotContains(t, err.Error(), "--secret-arg")

				out := logs.String()
				assert.True(t, epLogged(t, out, "DEBUG", "authenticator: requesting token"), "the token request is logged at debug level:\n%s", out)
				if flow != "client credentials" {
					assert.True(t, epLogged(t, out, "DEBUG", "authenticator: running token command", "command", sleeper), "the command's run is logged:\n%s", out)
					require.Eventually(t, func() bool {
						return epLogged(t, logs.String(), "WARN", "authenticator: token command failed", "command", sleeper)
					}, epPrompt, 10*time.Millisecond, "its failure is logged:\n%s", out)
				}
				assert.True(t, epLogged(t, out, "WARN", "authenticator: token refresh failed"), "the failed request is logged:\n%s", out)
				for _, secret := range []string{epSecret, "never-printed-token", "--secret-arg"} {
					assert.NotContains(t, out, secret)
				}
			})
		}
	}
}

// TestEntryNewCloseLeavesNoGoroutine: one Close ends everything New
// started, with and without proxyCommand: after a call, with a token
// request in flight (a token server that never answers) and with the
// proxy command in flight. The servers run on, so that a connection the
// client left open would show. (The deployment is not behind the proxy
// here: the proxy's own connections to its backends would outlive the
// client; the proxy token is sent all the same.)
func TestEntryNewCloseLeavesNoGoroutine(t *testing.T) {
	type tc struct {
		name           string
		proxy, hanging bool // with proxyCommand; a proxy command that never ends
		inFlight       bool // Close with the token request in flight
	}
	var cases []tc
	for _, proxy := range []bool{false, true} {
		p := map[bool]string{false: "without proxyCommand", true: "with proxyCommand"}[proxy]
		cases = append(cases, tc{name: p + "/after a call", proxy: proxy}, tc{name: p + "/token request in flight", proxy: proxy, inFlight: true})
	}
	cases = append(cases, tc{name: "with proxyCommand/proxy command in flight", proxy: true, hanging: true, inFlight: true})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tokens, admin := epDirect(t)
			cfg := grpcauth.Config{Endpoint: admin.Addr(), Insecure: true, ClientID: epClientID, ClientSecret: epSecret}
			started := filepath.Join(t.TempDir(), "started")
			switch {
			case tt.hanging:
				cfg.ProxyCommand = []string{epScript(t, "touch '"+started+"'\nexec sleep 30")}
			case tt.proxy:
				cfg.ProxyCommand = newEPCommand(t).argv
			}
			if tt.inFlight && !tt.hanging {
				tokens.SetFault(testserver.FaultHang())
			}

			ignore := goleak.IgnoreCurrent()
			c, err := grpcauth.New(cfg)
			require.NoError(t, err)
			call := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err := testserver.NewEchoClient(c.Conn).Unary(ctx, "x")
				call <- err
			}()
			switch {
			case !tt.inFlight:
				require.NoError(t, <-call)
			case tt.hanging:
				require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, 10*time.Second, 5*time.Millisecond, "the proxy command runs")
			default:
				require.Eventually(t, func() bool { return tokens.Requests() == 1 }, 10*time.Second, 5*time.Millisecond, "the token request is in flight")
			}

			epCloseTwice(t, c.Close)
			if tt.inFlight {
				select {
				case err := <-call:
					require.Error(t, err, "the call waiting for the token ended with Close")
				case <-time.After(epPrompt):
					t.Fatal("the call waiting for a token did not end after Close")
				}
			}
			goleak.VerifyNone(t, ignore)
		})
	}
}

// NewClient's caller has only the connection: closing it ends the keepers
// and everything else New started, proxy command included.
func TestEntryNewClientConnCloseLeavesNoGoroutine(t *testing.T) {
	_, admin := epDirect(t)
	cfg := grpcauth.Config{Endpoint: admin.Addr(), Insecure: true, ClientID: epClientID, ClientSecret: epSecret, ProxyCommand: newEPCommand(t).argv}
	ignore := goleak.IgnoreCurrent()
	conn, err := grpcauth.NewClient(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = testserver.NewEchoClient(conn).Unary(ctx, "x")
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	goleak.VerifyNone(t, ignore)
}

// TestEntryNewProxyLeavesRelayedRefusalsAlone: through grpcauth.New's
// connection, a gRPC answer that relays an upstream HTTP 401 in the text
// grpc-go gives a proxy's refusal is the service's: the call ran, so it
// is neither sent again nor a reason to run proxyCommand again.
func TestEntryNewProxyLeavesRelayedRefusalsAlone(t *testing.T) {
	d := newEPDeployment(t)
	cmd := newEPCommand(t)
	cfg := grpcauth.Config{Endpoint: d.front, Insecure: true, ClientID: epClientID, ClientSecret: epSecret, ProxyCommand: cmd.argv}
	c, err := grpcauth.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := epCtx(t)
	echo := testserver.NewEchoClient(c.Conn)
	_, err = echo.Unary(ctx, "a")
	require.NoError(t, err)

	relayed := status.Error(codes.Unauthenticated, "unexpected HTTP status code received from server: 401 (Unauthorized)")
	d.admin.SetEchoError(relayed)
	_, err = echo.Unary(ctx, "b")
	assert.Equal(t, status.Convert(relayed).Message(), status.Convert(err).Message())
	_, err = echo.Bidi(ctx, []string{"c", "d"})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.EqualValues(t, 3, d.admin.EchoCalls(), "each call ran once")
	assert.Equal(t, 1, cmd.runs(), "proxyCommand did not run again")
	assert.Zero(t, d.px.Rejected())
}
