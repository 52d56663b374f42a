//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxyConfig writes a Flyte config whose proxyCommand runs a script with
// body, and returns the config file's path.
func proxyConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "proxy.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	cfg := filepath.Join(dir, "config.yaml")
	yaml := "admin:\n  endpoint: dns:///admin.example:443\n  proxyCommand: [\"" + script + "\", \"--audience\", \"iap-client\"]\n"
	require.NoError(t, os.WriteFile(cfg, []byte(yaml), 0o600))
	return cfg
}

func TestTokenProxy(t *testing.T) {
	cfg := proxyConfig(t, `[ "$2" = iap-client ] && printf 'proxy-token-abc\n'`)
	code, out, errOut := runCmd(t, fakeEnv(nil), "token", "--proxy", "--config", cfg)
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Equal(t, "proxy-token-abc\n", out)

	code, out, _ = runCmd(t, fakeEnv(nil), "token", "--proxy", "--header", "--config", cfg)
	require.Equal(t, exitOK, code)
	assert.Equal(t, "proxy-authorization: Bearer proxy-token-abc\n", out)
}

func TestTokenProxyFails(t *testing.T) {
	cfg := proxyConfig(t, `printf leaked-proxy-token; echo 'run gcloud auth login' >&2; exit 2`)
	code, out, errOut := runCmd(t, fakeEnv(nil), "token", "--proxy", "--config", cfg)
	assert.Equal(t, exitFail, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "exited with status 2")
	assert.Contains(t, errOut, "run gcloud auth login")
	assert.NotContains(t, errOut, "leaked-proxy-token")
	assert.NotContains(t, errOut, "iap-client", "the arguments are not printed")

	code, _, errOut = runCmd(t, fakeEnv(nil), "token", "--proxy", "--endpoint", "admin.example:443")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, errOut, "no proxyCommand")
}
