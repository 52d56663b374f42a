package main

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A short-lived process that asks for a token again and again (a CI job,
// a credential helper) makes one token request per token lifetime: runs
// share the token through the cache, also when they run at once.
func TestTokenRunsShareOneClientCredentialsToken(t *testing.T) {
	tokens, admin, _ := newPlainServers(t, nil)
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret})
	env.cacheDir = t.TempDir()
	args := []string{"token", "--endpoint", admin.Addr(), "--insecure", "--client-id", clientID}

	var first string
	for i := range 100 {
		code, out, errOut := runCmd(t, env, args...)
		require.Equal(t, exitOK, code, "run %d: %s", i, errOut)
		if i == 0 {
			first = out
		}
		require.Equal(t, first, out, "run %d prints the same token", i)
	}
	assert.EqualValues(t, 1, tokens.Issued(), "100 runs, 1 token request")

	// 20 runs at once, on a cache of their own: still one request.
	env.cacheDir = t.TempDir()
	outs := make([]string, 20)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Go(func() {
			code, out, errOut := runCmd(t, env, args...)
			assert.Equal(t, exitOK, code, "run %d: %s", i, errOut)
			outs[i] = out
		})
	}
	wg.Wait()
	assert.EqualValues(t, 2, tokens.Issued(), "20 runs at once, 1 token request")
	for _, out := range outs {
		assert.Equal(t, outs[0], out)
	}
	_, err := tokens.Validate(t.Context(), strings.TrimSpace(outs[0]))
	require.NoError(t, err)

	// --no-cache asks anew.
	code, out, errOut := runCmd(t, env, append(args, "--no-cache")...)
	require.Equal(t, exitOK, code, errOut)
	assert.NotEqual(t, outs[0], out)
	assert.EqualValues(t, 3, tokens.Issued())
}
