package flyteconfig_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/flyteconfig"
)

// noEnv loads with an empty environment and no home directory file.
func noEnv(t *testing.T, file string) (*flyteconfig.Loaded, error) {
	t.Helper()
	return flyteconfig.Load(flyteconfig.Options{
		File:      file,
		LookupEnv: func(string) (string, bool) { return "", false },
		HomeDir:   t.TempDir(),
	})
}

func TestWarningsNameUnusedKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`admin:
  authType: Pkce
  clientSecretLocation: /etc/secret
  command: [x]
  pkceConfig:
    timeout: 1m
  deviceFlowConfig:
    pollInterval: 1s
  scopes: [all]
`), 0o600))
	l, err := noEnv(t, path)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"clientSecretLocation is set (" + path + ") but authType Pkce does not read it",
		"command is set (" + path + ") but authType Pkce does not read it",
		"deviceFlowConfig.pollInterval is set (" + path + ") but authType Pkce does not read it",
	}, l.Warnings())

	// The default clientSecretLocation is not "set".
	l, err = noEnv(t, "")
	require.NoError(t, err)
	l.Config.AuthType = "Pkce"
	assert.Empty(t, l.Warnings())

	l.Config = grpcauth.Config{Scopes: []string{"all"}, Command: []string{"x"}}
	assert.Equal(t, []string{"command is set (explicit) but no authType is set, so the default browser login (Pkce) does not read it"}, l.Warnings(),
		"the default flow reads scopes")
	l.Config = grpcauth.Config{AuthType: "magic", Command: []string{"x"}}
	w := l.Warnings()
	require.Len(t, w, 1, "an unknown authType, and no guess about its keys")
	assert.Contains(t, w[0], "unknown authType")
}
