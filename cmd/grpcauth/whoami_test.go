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
	assert.NotContains(t, out+errOut, token, "the token itself is not shown")
	assert.NotContains(t, out, "\x1b")
}

// An opaque token is said to be opaque.
func TestWhoamiOpaque(t *testing.T) {
	s := newServers(t)
	code, out, errOut := runCmd(t, fakeEnv(nil), "whoami", "--endpoint", "dns:///"+s.admin.Addr(), "--ca-cert", s.caFile,
		"--client-id", clientID, "--client-secret-file", secretFile(t, secret))
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Contains(t, out, "opaque (not a JWT): only its issuer can say whom it names")
	assert.Contains(t, out, "flyte-authorization")
	assert.NotContains(t, out+errOut, secret)
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
