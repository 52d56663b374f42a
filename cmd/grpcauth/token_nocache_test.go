package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/tokencache"
)

// 'grpcauth token --no-cache --login' with a browser login reads no cache,
// neither the one --token-cache-dir names nor the user's default one: it
// logs in anew rather than print a login kept elsewhere.
func TestTokenNoCacheReadsNoCache(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	defaultDir := filepath.Join(xdg, "grpcauth", "tokens")

	s := newLoginServers(t)
	browser, _ := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	common := []string{"--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce"}
	code, out, errOut := runCmd(t, env, append([]string{"login", "--token-cache-dir", defaultDir}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	cache, err := tokencache.NewFile(tokencache.WithDir(defaultDir))
	require.NoError(t, err)
	kept, err := cache.Load(t.Context(), loginCacheKey(t, s.admin.Addr()))
	require.NoError(t, err)
	require.NotNil(t, kept)

	for i, dir := range []string{t.TempDir(), defaultDir} {
		code, out, errOut = runCmd(t, env, append([]string{"token", "--no-cache", "--login", "--token-cache-dir", dir}, common...)...)
		require.Equal(t, exitOK, code, "stderr: %s", errOut)
		assert.NotEqual(t, kept.AccessToken, strings.TrimSpace(out), "a kept login was printed")
		_, err := s.auth.Validate(t.Context(), strings.TrimSpace(out))
		assert.NoError(t, err)
		assert.EqualValues(t, i+2, s.auth.CodeGrants(), "a new login")
	}
}
