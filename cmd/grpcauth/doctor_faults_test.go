package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A token URL whose query holds a secret (an API key some identity
// providers take in the URL): when the probe cannot reach it, the FAIL line
// does not print the query.
func TestDoctorTokenURLQueryNotShownWhenItFails(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close()) // nobody listens there now
	const querySecret = "doctor-review-q-s3cr3t"
	args := append(doctorArgs(admin, secretFile(t, secret)), "--token-url", "http://"+closed+"/oauth2/token?api_key="+querySecret)
	code, hops, all := doctorRun(t, fakeEnv(nil), args...)
	require.Equal(t, exitFail, code, all)
	require.True(t, strings.HasPrefix(hops["token url"], "FAIL"), all)
	assert.NotContains(t, all, querySecret, "the token URL's query is printed:\n%s", all)
}

// --method names a method the server does not serve: gRPC answers
// Unimplemented before any authentication runs (the server below refuses
// every token its echo service is shown), so the call hop fails.
func TestDoctorUnknownMethodIsNotAPass(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	admin.SetRejectAll(true) // any token this server judges is refused
	args := doctorArgs(admin, secretFile(t, secret))
	args[len(args)-1] = "/flyteidl.service.AdminService/NoSuchMethodReview"
	code, hops, all := doctorRun(t, fakeEnv(nil), args...)
	t.Logf("report:\n%s", all)
	assert.NotEqual(t, exitOK, code, "a call the server never authenticated is reported as passing:\n%s", all)
	assert.False(t, strings.HasPrefix(hops["call"], "ok"), "call: %q", hops["call"])
}

// After grpcauth login, doctor --method with the same cache: the call hop
// carries the kept login's token, as the credentials hop found it.
func TestDoctorCallUsesTheKeptLogin(t *testing.T) {
	s := newLoginServers(t)
	s.admin.SetRequireAuth(true)
	browser, _ := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	env.cacheDir = filepath.Join(t.TempDir(), "tokens")
	common := []string{"--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce"}
	code, out, errOut := runCmd(t, env, append([]string{"login"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	code, hops, all := doctorRun(t, env, append(common, "--method", echoMethod)...)
	t.Logf("report:\n%s", all)
	assert.True(t, strings.HasPrefix(hops["credentials"], "ok"), "credentials: %q", hops["credentials"])
	assert.Equal(t, exitOK, code, all)
	assert.True(t, strings.HasPrefix(hops["call"], "ok"), "call: %q", hops["call"])
}

// The endpoint is an HTTP/1.1 server (say FlyteAdmin's HTTP port instead
// of its gRPC one) and insecure is already set: the fix names HTTP/1.1,
// not insecure.
func TestDoctorHTTP1Endpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	code, hops, all := doctorRun(t, fakeEnv(nil), "--endpoint", addr, "--insecure", "--client-id", clientID, "--client-secret-file", secretFile(t, secret))
	t.Logf("report:\n%s", all)
	require.Equal(t, exitFail, code, all)
	require.True(t, strings.HasPrefix(hops["metadata"], "FAIL"), all)
	assert.NotContains(t, all, "TLS and plaintext disagree", "the fix blames insecure for an HTTP/1.1 server")
	assert.Contains(t, all, "the endpoint speaks HTTP/1.1, not gRPC")
}

// A token endpoint that redirects (an http→https hop, an SSO page) cannot
// work, since token requests follow no redirect: the token url hop fails.
func TestDoctorRedirectingTokenURL(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://sso.example.invalid/login", http.StatusFound)
	}))
	t.Cleanup(idp.Close)
	_, admin, _ := newPlainServers(t, nil)
	args := append(doctorArgs(admin, secretFile(t, secret)), "--token-url", idp.URL+"/oauth2/token")
	code, hops, all := doctorRun(t, fakeEnv(nil), args...)
	t.Logf("report:\n%s", all)
	require.Equal(t, exitFail, code, all)
	assert.True(t, strings.HasPrefix(hops["token url"], "FAIL"), "token url: %q", hops["token url"])
}

// proxyCommand (the token of an identity-aware proxy) fails: its own hop
// fails, before the metadata hop, whose RPCs would carry the token.
func TestDoctorProxyCommandFails(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("admin:\n  endpoint: dns:///"+admin.Addr()+"\n  insecure: true\n  authType: ClientSecret\n  clientId: "+clientID+
		"\n  clientSecretLocation: "+secretFile(t, secret)+"\n  proxyCommand: [\"sh\", \"-c\", \"echo no proxy token for you >&2; exit 1\"]\n"), 0o600))
	code, hops, all := doctorRun(t, fakeEnv(nil), "--config", cfgFile, "--method", echoMethod)
	t.Logf("report:\n%s", all)
	requireFailedAt(t, code, hops, all, "proxy", "no proxy token for you")
	assert.Contains(t, all, "fix: run admin.proxyCommand by hand")
	assert.Contains(t, hops["metadata"], "not checked")
}

// Behind an HTTPS proxy gRPC connects to the proxy, not to FlyteAdmin, so
// that is the hop reachable checks; NO_PROXY, and a loopback endpoint
// (which net/http never proxies), go directly.
func TestDoctorReachableThroughTheProxy(t *testing.T) {
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := gone.Addr().String()
	require.NoError(t, gone.Close())
	args := []string{"--endpoint", "flyte.example.invalid:443", "--client-id", clientID, "--client-secret-file", secretFile(t, secret)}

	_, hops, all := doctorRun(t, fakeEnv(map[string]string{"HTTPS_PROXY": "http://" + proxy.Addr().String()}), args...)
	assert.Regexp(t, `^ok\s+reachable\s+the proxy http://`+regexp.QuoteMeta(proxy.Addr().String())+` accepts connections; gRPC goes to flyte.example.invalid:443 through it \(HTTPS_PROXY\)`, hops["reachable"], all)

	code, hops, all := doctorRun(t, fakeEnv(map[string]string{"https_proxy": "http://" + closed}), args...)
	assert.Equal(t, exitFail, code, all)
	assert.Contains(t, hops["reachable"], "FAIL  reachable    the proxy http://"+closed+", which gRPC goes to flyte.example.invalid:443 through (HTTPS_PROXY): ", all)
	assert.Contains(t, all, "fix: check HTTPS_PROXY, or name the host in NO_PROXY to go to it directly")

	_, hops, all = doctorRun(t, fakeEnv(map[string]string{"HTTPS_PROXY": "http://" + closed, "NO_PROXY": ".example.invalid"}), args...)
	assert.NotContains(t, hops["reachable"], "proxy", all)

	_, admin, _ := newPlainServers(t, nil)
	_, hops, all = doctorRun(t, fakeEnv(map[string]string{"HTTPS_PROXY": "http://" + closed}), doctorArgs(admin, secretFile(t, secret))...)
	assert.Equal(t, "ok    reachable    "+admin.Addr()+" accepts connections", hops["reachable"], all)
}
