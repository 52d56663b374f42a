package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/tokencache"
)

// grpcauth token with authType ExternalCommand prints the command's token,
// never the browser login that 'grpcauth login' kept for the same endpoint
// and public client id (a command's tokens are not cached).
func TestTokenExternalCommandDoesNotUseTheLoginsCacheEntry(t *testing.T) {
	s := newLoginServers(t)
	browser, _ := followBrowser(t)
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": "echo,command-token"})
	env.browser = browser
	dir := filepath.Join(t.TempDir(), "tokens")
	common := []string{"--endpoint", s.admin.Addr(), "--insecure", "--token-cache-dir", dir}

	code, out, errOut := runCmd(t, env, append([]string{"login", "--auth-type", "Pkce"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	cache, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	login, err := cache.Load(t.Context(), loginCacheKey(t, s.admin.Addr()))
	require.NoError(t, err)
	require.NotNil(t, login)

	code, out, errOut = runCmd(t, env, append([]string{"token", "--auth-type", "ExternalCommand"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "command-token", strings.TrimSpace(out), "the command's token, not the browser login's")
}

// A token of unknown lifetime (a command's opaque token) is never served
// from the cache: the command runs again at every 'grpcauth token'.
func TestTokenOfUnknownLifetimeIsNotTakenFromTheCache(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": "sh,-c,echo x >> " + counter + "; echo opaque-$(wc -l < " + counter + ")"})
	env.cacheDir = filepath.Join(dir, "tokens")
	args := []string{"token", "--endpoint", "127.0.0.1:1", "--insecure", "--auth-type", "ExternalCommand", "--authorization-header", "authorization"}
	code, first, errOut := runCmd(t, env, args...)
	require.Equal(t, exitOK, code, errOut)
	code, second, errOut := runCmd(t, env, args...)
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, "opaque-1", strings.TrimSpace(first))
	assert.NotEqual(t, first, second, "a token of unknown lifetime is served from the cache on every run, the command never runs again")
}

// The cache entry of client credentials is per token endpoint, scopes and
// audience: a run for another audience gets a token of its own (not the
// one cached for the first; nor for other scopes, or another token
// URL).
func TestTokenClientCredentialsCacheIsPerAudience(t *testing.T) {
	tokens, admin, _ := newPlainServers(t, nil)
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret})
	env.cacheDir = t.TempDir()
	args := []string{"token", "--endpoint", admin.Addr(), "--insecure", "--client-id", clientID, "--scopes", "all", "--authorization-header", "authorization"}
	code, a, errOut := runCmd(t, env, append(args, "--audience", "api://a")...)
	require.Equal(t, exitOK, code, errOut)
	code, b, errOut := runCmd(t, env, append(args, "--audience", "api://b")...)
	require.Equal(t, exitOK, code, errOut)
	assert.NotEqual(t, a, b, "the token for audience api://a is printed for api://b")
	assert.EqualValues(t, 2, tokens.Issued())
}
