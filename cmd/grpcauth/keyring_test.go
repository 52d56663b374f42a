package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"github.com/flyteauth/grpcauth/tokencache"
)

// admin.tokenCache: keyring, from a config file: grpcauth login keeps the
// login in the OS keyring, grpcauth token uses it without a login, and
// grpcauth logout removes it. make keyring-test runs this against a real
// Secret Service (GRPCAUTH_KEYRING_TEST=secret-service); elsewhere, with
// no Secret Service, the same commands keep the login in a file and say
// once why.
func TestKeyringLoginTokenLogout(t *testing.T) {
	want := os.Getenv("GRPCAUTH_KEYRING_TEST")
	if want == "" {
		// No Secret Service for sure: no session bus.
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	}
	s := newLoginServers(t)
	dir := filepath.Join(t.TempDir(), "tokens")
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, fmt.Appendf(nil,
		"admin:\n  endpoint: dns:///%s\n  insecure: true\n  authType: Pkce\n  tokenCache: keyring\n", s.admin.Addr()), 0o600))
	browser, opened := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	common := []string{"--config", cfgFile, "--token-cache-dir", dir}

	code, out, errOut := runCmd(t, env, append([]string{"login"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	key := loginCacheKey(t, "dns:///"+s.admin.Addr())
	sum := sha256.Sum256([]byte(key))
	item, itemErr := keyring.Get("grpcauth", hex.EncodeToString(sum[:16]))
	tokenFiles, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	if want == "secret-service" {
		require.NoError(t, itemErr, "the login is in the Secret Service")
		assert.Contains(t, item, `"refresh_token"`)
		assert.Empty(t, tokenFiles, "and in no file")
		assert.NotContains(t, errOut, "keyring")
	} else {
		require.Error(t, itemErr)
		assert.Len(t, tokenFiles, 1, "the login is in a file")
		assert.Contains(t, errOut, "the OS keyring cannot be used; keeping tokens in files")
	}

	code, out, errOut = runCmd(t, env, append([]string{"token"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.NotEmpty(t, out)
	assert.Equal(t, 1, opened(), "the kept login served grpcauth token: no second login")

	code, out, errOut = runCmd(t, env, append([]string{"logout"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "Logged out")
	if want != "secret-service" {
		assert.Contains(t, errOut, "warning: tokencache: the token file is removed, but the OS keyring could not be asked", "logout says what may remain")
	}
	_, err = keyring.Get("grpcauth", hex.EncodeToString(sum[:16]))
	assert.Error(t, err, "no item is left")
	tokenFiles, err = filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	assert.Empty(t, tokenFiles)
}

// grpcauth login --from-flytectl takes the login flytectl keeps in the OS
// keyring (service flytectl, user "<endpoint>:flytectl-user", the token as
// JSON) instead of opening a browser; grpcauth token then uses it. With no
// Secret Service, it says the keyring could not be read.
func TestLoginFromFlytectl(t *testing.T) {
	want := os.Getenv("GRPCAUTH_KEYRING_TEST")
	if want == "" {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	}
	s := newLoginServers(t)
	browser, opened := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	endpoint := "dns:///" + s.admin.Addr()

	if want == "secret-service" {
		// flytectl's login: a real one, written as flytectl writes it.
		dir := t.TempDir()
		code, out, errOut := runCmd(t, env, "login", "--endpoint", endpoint, "--insecure", "--auth-type", "Pkce", "--token-cache-dir", dir)
		require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		cache, err := tokencache.NewFile(tokencache.WithDir(dir))
		require.NoError(t, err)
		tok, err := cache.Load(t.Context(), loginCacheKey(t, endpoint))
		require.NoError(t, err)
		item, err := json.Marshal(tok)
		require.NoError(t, err)
		require.NoError(t, keyring.Set("flytectl", endpoint+":flytectl-user", string(item)))
		t.Cleanup(func() { _ = keyring.Delete("flytectl", endpoint+":flytectl-user") })
	}

	dir := t.TempDir()
	common := []string{"--endpoint", endpoint, "--insecure", "--auth-type", "Pkce", "--token-cache-dir", dir}
	code, out, errOut := runCmd(t, env, append([]string{"login", "--from-flytectl"}, common...)...)
	if want != "secret-service" {
		assert.Equal(t, exitFail, code)
		assert.Contains(t, errOut, "the OS keyring could not be read")
		assert.Zero(t, opened(), "no browser instead")
		return
	}
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "Took flytectl's login for "+endpoint+" from the OS keyring.")
	code, out, errOut = runCmd(t, env, append([]string{"token"}, common...)...)
	require.Equal(t, exitOK, code, "stderr:\n%s", errOut)
	_, err := s.auth.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)
	assert.Equal(t, 1, opened(), "only flytectl's own login opened a browser")

	// A login flytectl got for another client: taken, with a warning.
	other, err := json.Marshal(map[string]any{"access_token": testJWT(t, jwt.MapClaims{"client_id": "other-client"}), "refresh_token": "r1", "expiry": time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.NoError(t, keyring.Set("flytectl", endpoint+":flytectl-user", string(other)))
	code, out, errOut = runCmd(t, env, append([]string{"login", "--from-flytectl"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, `grpcauth login: warning: flytectl's login was issued to client "other-client", but this configuration logs in as "`+publicClientID+`"`)
}
