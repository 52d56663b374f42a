//go:build unix

package connectauth_test

// These tests prove, from a user's side, that connectauth.New goes through
// grpcauth.New's one assembly path: the proxy token of proxyCommand on the
// metadata RPCs (over grpc-go), the token request and the connect-go calls
// (through the proxy transport around its HTTP client); the options bound
// and log every flow; one Close ends everything.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
)

const (
	// epProxyPrefix starts every proxy token a counting command prints;
	// it must appear in no log.
	epProxyPrefix = "pxtokZq7-"
	// epTimeout is the token timeout of the timeout tests; epPrompt is how
	// soon a bounded request must be over (the commands sleep 4 s).
	epTimeout = 300 * time.Millisecond
	epPrompt  = 3 * time.Second
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
// successive runs.
type epCommand struct {
	t     *testing.T
	argv  []string
	count string
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

// set makes the next run print epProxyToken(n+1).
func (c *epCommand) set(n int) {
	require.NoError(c.t, os.WriteFile(c.count, []byte(strconv.Itoa(n)+"\n"), 0o600))
}

// epFlyte2 is a plaintext Flyte 2 backend (connect-go) and its token
// endpoint, optionally both behind an IAP-like proxy.
type epFlyte2 struct {
	px       *testserver.Proxy // nil without the proxy
	tokens   *testserver.TokenServer
	srv      *testserver.ConnectServer
	endpoint string // the config's endpoint: the proxy's front, or the server
	tokenURL string // the advertised token endpoint
}

func newEPFlyte2(t *testing.T, behindProxy bool) *epFlyte2 {
	t.Helper()
	d := &epFlyte2{}
	var err error
	d.tokens, err = testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(t, err)
	t.Cleanup(d.tokens.Close)
	d.tokenURL = d.tokens.TokenURL()
	if behindProxy {
		d.px, err = testserver.NewProxy()
		require.NoError(t, err)
		t.Cleanup(d.px.Close)
		for i := 1; i <= 9; i++ {
			d.px.Allow(epProxyToken(i))
		}
		front, err := d.px.FrontHTTP(d.tokens.URL(), nil)
		require.NoError(t, err)
		d.tokenURL = front + testserver.TokenPath
	}
	d.srv, err = testserver.NewConnectServer(testserver.WithConnectValidator(d.tokens),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{TokenEndpoint: d.tokenURL}))
	require.NoError(t, err)
	t.Cleanup(d.srv.Close)
	d.endpoint = d.srv.Addr()
	if behindProxy {
		// The front speaks h2c to the backend: grpc-go's metadata RPCs
		// and connect-go's gRPC protocol need HTTP/2.
		h2c := d.srv.HTTPClient().Transport.(*http.Transport)
		t.Cleanup(h2c.CloseIdleConnections)
		front, err := d.px.FrontHTTP(d.srv.URL(), h2c)
		require.NoError(t, err)
		d.endpoint = strings.TrimPrefix(front, "http://")
	}
	return d
}

func (d *epFlyte2) config() grpcauth.Config {
	return grpcauth.Config{Endpoint: d.endpoint, Insecure: true, ClientID: clientID, ClientSecret: clientSecret}
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

func epAccessToken(t *testing.T, k *authenticator.Keeper) string {
	t.Helper()
	_, value, err := k.Credential(ctx(t))
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

// TestEntryConnectProxyTokenOnEveryRequest: with proxyCommand, the
// metadata RPCs (over grpc-go), the token request and the connect-go calls
// in every protocol pass the proxy; an expired proxy token is replaced by
// one more run of the command, whichever request meets the refusal.
func TestEntryConnectProxyTokenOnEveryRequest(t *testing.T) {
	d := newEPFlyte2(t, true)
	cmd := newEPCommand(t)
	cfg := d.config()
	cfg.ProxyCommand = cmd.argv
	var logs testserver.LogBuffer
	c := newClient(t, cfg, grpcauth.WithLogger(logs.Logger()))

	for _, p := range protocols {
		resp, err := epEcho(c, p.opts...).Echo(ctx(t), req(p.name))
		require.NoError(t, err, p.name)
		assert.Equal(t, p.name, resp.Msg.GetValue())
	}
	stream, err := epEcho(c).Repeat(ctx(t), req("s"))
	require.NoError(t, err)
	for stream.Receive() {
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())

	oauth2Calls, publicCalls := d.srv.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth2Calls, publicCalls}, "both metadata RPCs passed the proxy and were answered")
	assert.False(t, d.srv.MetadataRPCsSawToken())
	assert.EqualValues(t, 1, d.tokens.Issued(), "the token request passed the proxy")
	assert.EqualValues(t, len(protocols)+1, d.srv.EchoCalls(), "every connect-go call passed the proxy")
	assert.Zero(t, d.px.Rejected(), "no request went without a valid proxy token")
	assert.Equal(t, 1, cmd.runs(), "one run for all of them")

	// A connect-go call meets the expiry.
	d.px.Expire(epProxyToken(1))
	_, err = epEcho(c).Echo(ctx(t), req("after expiry"))
	require.NoError(t, err)
	assert.Equal(t, 2, cmd.runs(), "one more run of the command")
	assert.EqualValues(t, 1, d.px.Rejected())
	assert.EqualValues(t, 1, d.tokens.Issued(), "the access token was not touched")

	// A token request meets the expiry.
	d.px.Expire(epProxyToken(2))
	require.NoError(t, c.Authenticator.RefreshCredentials(ctx(t)))
	assert.Equal(t, 3, cmd.runs(), "one more run of the command")
	assert.EqualValues(t, 2, d.px.Rejected())
	assert.EqualValues(t, 2, d.tokens.Issued())

	// The metadata RPCs meet the expiry: a new client whose command first
	// hands out a token the proxy already refuses.
	d.px.Expire(epProxyToken(3))
	cmd.set(2)
	c2 := newClient(t, cfg, grpcauth.WithLogger(logs.Logger()))
	_, err = epEcho(c2, connect.WithGRPC()).Echo(ctx(t), req("new client"))
	require.NoError(t, err)
	assert.Equal(t, 4, cmd.runs(), "the refused token, then one more run")
	// Both metadata RPCs may go out at once with the refused token.
	assert.Contains(t, []int64{3, 4}, d.px.Rejected())
	oauth2Calls, publicCalls = d.srv.MetadataCalls()
	assert.Equal(t, [2]int64{2, 2}, [2]int64{oauth2Calls, publicCalls}, "the new client's metadata RPCs were answered")
	assert.EqualValues(t, 3, d.tokens.Issued())

	out := logs.String()
	assert.True(t, epLogged(t, out, "DEBUG", "authenticator: requesting token", "token_url", d.tokenURL), "the flow's keeper logs its token request at debug level:\n%s", out)
	assert.True(t, epLogged(t, out, "DEBUG", "authenticator: running token command", "command", cmd.argv[0]), "the proxy keeper logs its runs:\n%s", out)
	for _, secret := range []string{clientSecret, epProxyPrefix, epAccessToken(t, c.Authenticator), epAccessToken(t, c2.Authenticator), "iap"} {
		assert.NotContains(t, out, secret)
	}
}

// TestEntryConnectTokenTimeoutAndLogger: the token timeout, given either
// way, bounds the token request of client credentials, of an external
// command and of the proxy command; the logger receives the keeper's
// records and never the secret or a token.
func TestEntryConnectTokenTimeoutAndLogger(t *testing.T) {
	sleeper := epScript(t, "sleep 4\nprintf never-printed-token")
	options := map[string]grpcauth.Option{
		"WithTokenTimeout":         grpcauth.WithTokenTimeout(epTimeout),
		"WithAuthenticatorOptions": grpcauth.WithAuthenticatorOptions(authenticator.WithTokenTimeout(epTimeout)),
	}
	for _, flow := range []string{"client credentials", "external command", "proxy command"} {
		for via, timeoutOpt := range options {
			if flow == "proxy command" && via == "WithAuthenticatorOptions" {
				continue // the flow's Keeper only; the proxy keeper takes grpcauth.WithTokenTimeout
			}
			t.Run(flow+"/"+via, func(t *testing.T) {
				d := newEPFlyte2(t, false)
				cfg := d.config()
				switch flow {
				case "client credentials":
					d.tokens.SetFault(testserver.FaultHang())
				case "external command":
					cfg = grpcauth.Config{Endpoint: d.endpoint, Insecure: true, AuthType: grpcauth.AuthTypeExternalCommand, Command: []string{sleeper, "--secret-arg"}}
				case "proxy command":
					cfg.ProxyCommand = []string{sleeper, "--secret-arg"}
				}
				var logs testserver.LogBuffer
				c, err := connectauth.New(cfg, timeoutOpt, grpcauth.WithLogger(logs.Logger()))
				require.NoError(t, err)
				defer func() { require.NoError(t, c.Close()) }()

				done := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					defer cancel()
					_, err := epEcho(c).Echo(ctx, req("x"))
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
					assert.EqualValues(t, 1, d.tokens.Requests(), "the token request was sent")
					assert.Regexp(t, `(?i)deadline|timed? ?out|timeout`, err.Error(), "the error says the request timed out")
				case "proxy command":
					// The metadata RPC waits for the proxy credential: the
					// call's wait for the metadata and the command's run
					// end at the same time, and either may be reported.
					assert.Regexp(t, `killed|context deadline exceeded`, err.Error(), "the error says the command was killed or the wait ran out")
					assert.Zero(t, d.tokens.Requests())
				default:
					assert.Contains(t, err.Error(), "killed", "the error says the command was killed")
					assert.Zero(t, d.tokens.Requests())
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
				for _, secret := range []string{clientSecret, "never-printed-token", "--secret-arg"} {
					assert.NotContains(t, out, secret)
				}
			})
		}
	}
}

// TestEntryConnectCloseLeavesNoGoroutine: one Close ends everything
// connectauth.New started (the keepers, the metadata connection, the HTTP
// client's connections), with and without proxyCommand, after calls and
// with a token request in flight. The servers run on, so that a connection
// the client left open would show; they are not behind the proxy, whose
// own connections to its backends would outlive the client.
func TestEntryConnectCloseLeavesNoGoroutine(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		for _, inFlight := range []bool{false, true} {
			name := map[bool]string{false: "without proxyCommand", true: "with proxyCommand"}[proxy] + "/" +
				map[bool]string{false: "after calls", true: "token request in flight"}[inFlight]
			t.Run(name, func(t *testing.T) {
				d := newEPFlyte2(t, false)
				cfg := d.config()
				if proxy {
					cfg.ProxyCommand = newEPCommand(t).argv
				}
				if inFlight {
					d.tokens.SetFault(testserver.FaultHang())
				}

				ignore := goleak.IgnoreCurrent()
				c, err := connectauth.New(cfg)
				require.NoError(t, err)
				call := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					defer cancel()
					var err error
					for _, p := range protocols {
						if _, err = epEcho(c, p.opts...).Echo(ctx, req(p.name)); err != nil {
							break
						}
					}
					call <- err
				}()
				if inFlight {
					require.Eventually(t, func() bool { return d.tokens.Requests() == 1 }, 10*time.Second, 5*time.Millisecond, "the token request is in flight")
				} else {
					require.NoError(t, <-call)
				}

				epCloseTwice(t, c.Close)
				if inFlight {
					select {
					case err := <-call:
						require.Error(t, err, "the call waiting for the token ended with Close")
						assert.Zero(t, d.srv.EchoCalls(), "a call that was waiting for a token when Close came is not sent without one: %v", err)
					case <-time.After(epPrompt):
						t.Fatal("the call waiting for a token did not end after Close")
					}
				}
				goleak.VerifyNone(t, ignore)
			})
		}
	}
}
