package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/tokencache"
)

// 'grpcauth token' with a browser login uses the login 'grpcauth login'
// kept, redeeming its refresh token once the access token expired, and
// never opens a login itself: without a usable one it says to run
// 'grpcauth login' and exits with status 3.
func TestTokenSaysRunLogin(t *testing.T) {
	s := newLoginServers(t)
	browser, opened := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	dir := t.TempDir()
	common := []string{"--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce", "--token-cache-dir", dir}

	code, out, errOut := runCmd(t, env, append([]string{"token"}, common...)...)
	assert.Equal(t, exitLogin, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Empty(t, out)
	assert.Contains(t, errOut, s.admin.Addr()+" needs a login (no login is kept for it): run 'grpcauth login'")
	assert.Zero(t, opened(), "no browser")
	assert.Zero(t, s.auth.Authorizations())

	code, out, errOut = runCmd(t, env, append([]string{"login"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	code, out, errOut = runCmd(t, env, append([]string{"token"}, common...)...)
	require.Equal(t, exitOK, code, "stderr:\n%s", errOut)
	_, err := s.auth.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)

	// An hour later: the access token has expired; its refresh token
	// gets a new one, with no login.
	key := loginCacheKey(t, s.admin.Addr())
	cache, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	expire := func() {
		tok, err := cache.Load(t.Context(), key)
		require.NoError(t, err)
		require.NotNil(t, tok)
		tok.Expiry = time.Now().Add(-time.Minute)
		require.NoError(t, cache.Save(t.Context(), key, tok))
	}
	expire()
	code, out, errOut = runCmd(t, env, append([]string{"token"}, common...)...)
	require.Equal(t, exitOK, code, "stderr:\n%s", errOut)
	assert.EqualValues(t, 1, s.auth.RefreshGrants())
	_, err = s.auth.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)

	// The provider refuses the refresh token: a login is needed.
	expire()
	s.auth.RevokeRefreshTokens()
	code, out, errOut = runCmd(t, env, append([]string{"token"}, common...)...)
	assert.Equal(t, exitLogin, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "its identity provider refused the kept login")
	assert.Contains(t, errOut, "invalid_grant")
	assert.Contains(t, errOut, "run 'grpcauth login'")
	assert.Equal(t, 1, opened(), "the one login was grpcauth login's")
	assert.EqualValues(t, 1, s.auth.CodeGrants())

	// --login logs in here.
	code, out, errOut = runCmd(t, env, append([]string{"token", "--login"}, common...)...)
	require.Equal(t, exitOK, code, "stderr:\n%s", errOut)
	assert.Equal(t, 2, opened())
	_, err = s.auth.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)
}
