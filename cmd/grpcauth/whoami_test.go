package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// testJWT signs claims with a throwaway key: whoami never verifies.
func testJWT(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("whoami-test-key"))
	require.NoError(t, err)
	return s
}

// whoami shows what the flow's JWT claims, with every value the token
// chose made printable, and never the token itself.
func TestWhoamiJWT(t *testing.T) {
	admin, err := testserver.NewAdminServer(testserver.WithTCP())
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	now := time.Now()
	token := testJWT(t, jwt.MapClaims{
		"iss":       "https://idp.example.com/oauth2/default",
		"sub":       "alice\x1b[31m\u202e",
		"aud":       []string{"https://flyte.example", "api://other"},
		"scope":     "all offline",
		"client_id": "flytectl",
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Unix(),
	})
	script := filepath.Join(t.TempDir(), "print-token.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' '"+token+"'\n"), 0o700))

	code, out, errOut := runCmd(t, fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": script}),
		"whoami", "--endpoint", admin.Addr(), "--insecure", "--auth-type", "ExternalCommand")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	rows := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(line, ":")
		require.True(t, ok, "line %q", line)
		rows[k] = strings.TrimSpace(v)
	}
	assert.Contains(t, rows["token"], "a JWT, decoded WITHOUT verifying its signature")
	assert.Equal(t, "https://idp.example.com/oauth2/default", rows["issuer"])
	assert.Equal(t, "alice [31m", rows["subject"], "no escape sequence, no bidirectional control reaches the terminal")
	assert.Equal(t, "https://flyte.example api://other", rows["audience"])
	assert.Equal(t, "all offline", rows["scopes"])
	assert.Equal(t, "flytectl", rows["client"])
	assert.Regexp(t, `\(in (59m[0-9]+s|1h0m0s)\)$`, rows["expires"])
	assert.Equal(t, "authorization", rows["header"])
	// FlyteAdmin's UserInfo answered from the same claims.
	assert.Equal(t, "FlyteAdmin's flyteidl.service.IdentityService says, of the token it took", rows["server"])
	assert.Equal(t, "alice [31m", rows["  subject"])
	assert.Equal(t, "7, as decoded above", rows["  claims"])
	assert.NotContains(t, out+errOut, token, "the token itself is not shown")
	assert.NotContains(t, out, "\x1b")
}

// whoamiRows runs whoami and returns its rows by name.
func whoamiRows(t *testing.T, env environment, args ...string) (code int, rows map[string]string, stdout, stderr string) {
	t.Helper()
	code, stdout, stderr = runCmd(t, env, append([]string{"whoami"}, args...)...)
	rows = map[string]string{}
	for line := range strings.Lines(stdout) {
		k, v, ok := strings.Cut(line, ":")
		require.True(t, ok, "line %q", line)
		rows[k] = strings.TrimSpace(v)
	}
	return code, rows, stdout, stderr
}

// tokenScript writes a token command that prints token.
func tokenScript(t *testing.T, token string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "print-token.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' '"+token+"'\n"), 0o700))
	return script
}

// Flyte 2 names the caller from the bearer JWT's claims; every value it
// chose reaches the terminal printable.
func TestWhoamiAsksFlyte2(t *testing.T) {
	srv, err := testserver.NewConnectServer(testserver.WithConnectOpen())
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	token := testJWT(t, jwt.MapClaims{"sub": "00u1", "email": "ada@example.com\x1b]0;owned\x07", "given_name": "Ada", "family_name": "Lovelace",
		"exp": time.Now().Add(time.Hour).Unix()})
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": tokenScript(t, token)})
	code, rows, out, errOut := whoamiRows(t, env, "--endpoint", "http://"+srv.Addr(), "--auth-type", "ExternalCommand", "--authorization-header", "authorization")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "Flyte 2's flyteidl2.auth.IdentityService says, of the token it took", rows["server"])
	assert.Equal(t, "00u1", rows["  subject"])
	assert.Equal(t, "Ada Lovelace", rows["  name"])
	assert.Equal(t, "ada@example.com ]0;owned", rows["  email"])
	assert.NotContains(t, rows, "  claims", "Flyte 2 sends no additional claims")
	assert.NotContains(t, out, "\x1b")
	assert.NotContains(t, out, "\x07")
}

// An opaque token names nobody to Flyte 2, and a deployment that does not
// trust the forwarded identity names nobody at all: whoami shows the
// token, then says why the server could not say, and fails.
func TestWhoamiFlyte2NamesNobody(t *testing.T) {
	t.Run("opaque token", func(t *testing.T) {
		srv, tokens := newFlyte2ClientCredentials(t)
		env := fakeEnv(map[string]string{"FLYTE_API_KEY": flyte2APIKey("http://"+srv.Addr(), clientID, secret, "tenant")})
		code, rows, out, errOut := whoamiRows(t, env)
		require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		assert.Contains(t, rows["token"], "opaque")
		assert.Equal(t, "could not say, see below", rows["server"])
		assert.Contains(t, errOut, "grpcauth whoami: Flyte 2's flyteidl2.auth.IdentityService: Unauthenticated: "+testserver.Flyte2NoIdentity+": Flyte 2 names the caller from the claims of a JWT access token")
		assert.NotContains(t, out+errOut, secret)
		assert.LessOrEqual(t, tokens.Requests(), int64(2), "at most the one retry with a new token")
	})
	t.Run("identity headers not trusted", func(t *testing.T) {
		srv, err := testserver.NewConnectServer(testserver.WithConnectOpen())
		require.NoError(t, err)
		t.Cleanup(srv.Close)
		srv.SetTrustIdentityHeaders(false)
		token := testJWT(t, jwt.MapClaims{"sub": "00u1", "exp": time.Now().Add(time.Hour).Unix()})
		env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": tokenScript(t, token)})
		code, rows, out, errOut := whoamiRows(t, env, "--endpoint", "http://"+srv.Addr(), "--auth-type", "ExternalCommand", "--authorization-header", "authorization")
		require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		assert.Equal(t, "00u1", rows["subject"], "the token's own claims are still shown")
		assert.Contains(t, errOut, testserver.Flyte2NoIdentity)
	})
}

// FlyteAdmin without its auth serves no IdentityService: said, not a
// failure. --local asks nothing; a server that refuses every token makes
// whoami fail, saying so.
func TestWhoamiFlyte1Answers(t *testing.T) {
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithoutIdentityService())
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	token := testJWT(t, jwt.MapClaims{"sub": "svc", "exp": time.Now().Add(time.Hour).Unix()})
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": tokenScript(t, token)})
	args := []string{"--endpoint", admin.Addr(), "--insecure", "--auth-type", "ExternalCommand", "--authorization-header", "authorization"}
	code, rows, out, errOut := whoamiRows(t, env, args...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "serves no IdentityService (FlyteAdmin serves one only with its auth on): nothing to ask", rows["server"])

	refusing, err := testserver.NewAdminServer(testserver.WithTCP())
	require.NoError(t, err)
	t.Cleanup(refusing.Close)
	refusing.SetRejectAll(true)
	args[1] = refusing.Addr()
	code, rows, out, errOut = whoamiRows(t, env, append(args, "--local")...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.NotContains(t, rows, "server")
	assert.Equal(t, int64(0), refusing.Rejected(), "--local made no call")

	code, _, out, errOut = whoamiRows(t, env, args...)
	require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "grpcauth whoami: FlyteAdmin's flyteidl.service.IdentityService: Unauthenticated: testserver: all calls are rejected (SetRejectAll): the server refused the token, a new one too")
	assert.Equal(t, int64(2), refusing.Rejected(), "one retry with a new token, no more")
}

// An opaque token is said to be opaque.
func TestWhoamiOpaque(t *testing.T) {
	s := newServers(t)
	code, out, errOut := runCmd(t, fakeEnv(nil), "whoami", "--endpoint", "dns:///"+s.admin.Addr(), "--ca-cert", s.caFile,
		"--client-id", clientID, "--client-secret-file", secretFile(t, secret))
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Contains(t, out, "opaque (not a JWT): only its issuer can say whom it names")
	assert.Contains(t, out, "flyte-authorization")
	assert.Contains(t, out, "FlyteAdmin's flyteidl.service.IdentityService says, of the token it took")
	assert.Regexp(t, `(?m)^  subject:\s+`+clientID+`$`, out)
	assert.NotContains(t, out+errOut, secret)
	assert.Equal(t, int64(1), s.tokens.Requests(), "the token whoami got is the one the server was asked about")
}

// The clock checks: an expired token, one issued in the future.
func TestDescribeTokenClock(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	rows := describeToken(testJWT(t, jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix(), "iat": now.Add(5 * time.Minute).Unix()}), now)
	shown := map[string]string{}
	for _, r := range rows {
		shown[r[0]] = r[1]
	}
	assert.Equal(t, "2026-12-05T11:58:00Z (EXPIRED 2m0s ago by this machine's clock)", shown["expires"])
	assert.Equal(t, "2026-12-05T12:05:00Z (5m0s in the future by this machine's clock: check the clock)", shown["issued"])
	assert.Equal(t, "-", shown["audience"])
	assert.Equal(t, [][2]string{{"token", "opaque (three dot-separated parts, but not a JWT that can be read)"}}, describeToken("a.b.c", now))
}
