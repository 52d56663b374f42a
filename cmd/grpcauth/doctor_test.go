package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

const echoMethod = testserver.EchoUnaryMethod

// doctorRun runs grpcauth doctor and returns its exit status and its
// report as hop name → the line's status and text.
func doctorRun(t *testing.T, env environment, args ...string) (int, map[string]string, string) {
	t.Helper()
	code, out, errOut := runCmd(t, env, append([]string{"doctor", "--timeout", "5s"}, args...)...)
	hops := map[string]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "ok" || f[0] == "FAIL" || f[0] == "-") {
			name := f[1]
			if name == "token" || name == "not" {
				name = f[1] + " " + f[2]
			}
			hops[name] = strings.TrimSpace(line)
		}
	}
	return code, hops, out + errOut
}

// requireFailedAt checks that the report names hop as the first failure,
// with text in its line or its fix, and leaves the later hops unchecked.
func requireFailedAt(t *testing.T, code int, hops map[string]string, all, hop, text string) {
	t.Helper()
	t.Logf("report:\n%s", all)
	require.Equal(t, exitFail, code, all)
	require.True(t, strings.HasPrefix(hops[hop], "FAIL"), "hop %q: %q\n%s", hop, hops[hop], all)
	assert.Contains(t, all, text)
	assert.Contains(t, all, "fix: ")
	failures := strings.Count(all, "FAIL ")
	assert.Equal(t, 1, failures, "only the first failure is named:\n%s", all)
}

func doctorArgs(admin *testserver.AdminServer, secretPath string) []string {
	return []string{"--endpoint", admin.Addr(), "--insecure", "--client-id", clientID, "--client-secret-file", secretPath, "--method", echoMethod}
}

func TestDoctorAllHopsPass(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	code, hops, all := doctorRun(t, fakeEnv(nil), doctorArgs(admin, secretFile(t, secret))...)
	require.Equal(t, exitOK, code, all)
	for _, h := range []string{"config", "reachable", "proxy", "metadata", "token url", "clock", "credentials", "claims", "call"} {
		assert.True(t, strings.HasPrefix(hops[h], "ok"), "hop %q: %q\n%s", h, hops[h], all)
	}
	assert.Contains(t, hops["metadata"], "Flyte 1 (flyteidl.service.AuthMetadataService)")
	assert.Contains(t, hops["call"], echoMethod+" accepted")
	assert.NotContains(t, all, secret)
	t.Logf("transcript:\n%s", all)
}

func TestDoctorConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("admin:\n  insecure: [not, a, bool]\n"), 0o600))
	code, hops, all := doctorRun(t, fakeEnv(nil), "--config", bad)
	requireFailedAt(t, code, hops, all, "config", "fix the file")

	code, hops, all = doctorRun(t, fakeEnv(nil))
	requireFailedAt(t, code, hops, all, "config", "set admin.endpoint")
	assert.Contains(t, hops["reachable"], "not checked")
}

func TestDoctorUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nobody listens there now
	code, hops, all := doctorRun(t, fakeEnv(nil), "--endpoint", addr, "--insecure")
	requireFailedAt(t, code, hops, all, "reachable", "connection refused")
}

func TestDoctorTLSNotTrusted(t *testing.T) {
	s := newServers(t) // TLS from a CA the command is not told of
	code, hops, all := doctorRun(t, fakeEnv(nil), "--endpoint", "dns:///"+s.admin.Addr(), "--client-id", clientID, "--client-secret-file", secretFile(t, secret))
	requireFailedAt(t, code, hops, all, "metadata", "certificate")
	assert.Contains(t, all, "name its CA with --ca-cert")
}

func TestDoctorPlaintextAgainstTLS(t *testing.T) {
	s := newServers(t)
	code, hops, all := doctorRun(t, fakeEnv(nil), "--endpoint", "dns:///"+s.admin.Addr(), "--insecure", "--client-id", clientID, "--client-secret-file", secretFile(t, secret))
	requireFailedAt(t, code, hops, all, "metadata", "fix: ")
}

func TestDoctorNotFlyteAdmin(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	admin.SetMetadataError(status.Error(codes.Unimplemented, "unknown service flyteidl.service.AuthMetadataService"))
	code, hops, all := doctorRun(t, fakeEnv(nil), doctorArgs(admin, secretFile(t, secret))...)
	requireFailedAt(t, code, hops, all, "metadata", "the endpoint is not FlyteAdmin")
}

func TestDoctorTokenURLInClear(t *testing.T) {
	s := newServers(t)
	code, hops, all := doctorRun(t, fakeEnv(nil), "--endpoint", "dns:///"+s.admin.Addr(), "--ca-cert", s.caFile,
		"--client-id", clientID, "--client-secret-file", secretFile(t, secret), "--token-url", "http://idp.example.invalid/oauth2/token")
	requireFailedAt(t, code, hops, all, "token url", "would travel in clear")
}

func TestDoctorClockSkew(t *testing.T) {
	_, admin, _ := newPlainServers(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", time.Now().Add(-10*time.Minute).UTC().Format(http.TimeFormat))
			next.ServeHTTP(w, r)
		})
	})
	code, hops, all := doctorRun(t, fakeEnv(nil), doctorArgs(admin, secretFile(t, secret))...)
	requireFailedAt(t, code, hops, all, "clock", "set the clock right (NTP)")
	assert.Regexp(t, `clock is 10m[0-9]+s off the token endpoint's`, hops["clock"])
}

func TestDoctorCredentialsRefused(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	code, hops, all := doctorRun(t, fakeEnv(nil), doctorArgs(admin, secretFile(t, "wrong-secret-4d1"))...)
	requireFailedAt(t, code, hops, all, "credentials", "invalid_client")
	assert.Contains(t, all, "check the client id")
	assert.NotContains(t, all, "wrong-secret-4d1")
}

func TestDoctorCallRefused(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	admin.SetRejectAll(true)
	code, hops, all := doctorRun(t, fakeEnv(nil), doctorArgs(admin, secretFile(t, secret))...)
	requireFailedAt(t, code, hops, all, "call", "grpcauth whoami")
}

func TestDoctorLoginNeeded(t *testing.T) {
	s := newLoginServers(t)
	code, hops, all := doctorRun(t, fakeEnv(nil), "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce")
	require.Equal(t, exitLogin, code, all)
	assert.True(t, strings.HasPrefix(hops["credentials"], "FAIL"), all)
	assert.Contains(t, all, "no login is kept for it")
	assert.Contains(t, all, "fix: run 'grpcauth login'")
	assert.Zero(t, s.auth.Authorizations(), "doctor never logs in")
}

// The claims hop: a JWT whose audience or scopes are not the ones asked
// for fails it, with the fix; the right ones pass.
func TestDoctorClaims(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	jwtCommand := func(aud, scope string) environment {
		token := testJWT(t, jwt.MapClaims{"aud": aud, "scope": scope, "exp": time.Now().Add(time.Hour).Unix()})
		script := filepath.Join(t.TempDir(), "print-token.sh")
		require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' '"+token+"'\n"), 0o700))
		return fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": script})
	}
	args := []string{"--endpoint", admin.Addr(), "--insecure", "--auth-type", "ExternalCommand",
		"--audience", "https://flyte.example", "--scopes", "all,offline"}

	code, hops, all := doctorRun(t, jwtCommand("https://other.example", "all offline"), args...)
	requireFailedAt(t, code, hops, all, "claims", "does not name https://flyte.example")
	assert.Contains(t, all, "audienceParam")

	code, hops, all = doctorRun(t, jwtCommand("https://flyte.example", "all"), args...)
	requireFailedAt(t, code, hops, all, "claims", "the token lacks scopes it was asked for: offline (granted: all)")

	code, hops, all = doctorRun(t, jwtCommand("https://flyte.example", "all offline"), args...)
	require.Equal(t, exitOK, code, all)
	assert.Contains(t, hops["claims"], "its audience and scopes are the ones asked for")
}
