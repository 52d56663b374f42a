package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
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
