package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

func TestFlow(t *testing.T) {
	for _, tt := range []struct {
		cfg  grpcauth.Config
		want string
	}{
		{grpcauth.Config{}, ""},
		{grpcauth.Config{ClientID: "id"}, grpcauth.AuthTypeClientSecret},
		{grpcauth.Config{AuthType: "standard"}, grpcauth.AuthTypePkce},
		{grpcauth.Config{AuthType: "deviceflow"}, grpcauth.AuthTypeDeviceFlow},
		{grpcauth.Config{AuthType: "external_process"}, grpcauth.AuthTypeExternalCommand},
	} {
		got, err := tt.cfg.Flow()
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	_, err := grpcauth.Config{AuthType: "magic"}.Flow()
	require.ErrorContains(t, err, `unknown authType "magic"`)
}

func TestUnusedKeys(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", `admin:
  authType: Pkce
  clientSecretLocation: /etc/secret
  command: [x]
  pkceConfig:
    timeout: 1m
  deviceFlowConfig:
    pollInterval: 1s
  scopes: [all]
`)
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"clientSecretLocation is set (" + path + ") but authType Pkce does not read it",
		"command is set (" + path + ") but authType Pkce does not read it",
		"deviceFlowConfig.pollInterval is set (" + path + ") but authType Pkce does not read it",
	}, cfg.UnusedKeys())

	// The default clientSecretLocation is not "set".
	loaded, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{})
	require.NoError(t, err)
	loaded.AuthType = "Pkce"
	assert.Empty(t, loaded.UnusedKeys())

	noAuth := grpcauth.Config{Scopes: []string{"all"}, Command: []string{"x"}}
	assert.Equal(t, []string{"command is set (explicit) but no authType is set, so the default browser login (Pkce) does not read it"}, noAuth.UnusedKeys(),
		"the default flow reads scopes")
	assert.Empty(t, grpcauth.Config{AuthType: "magic", Command: []string{"x"}}.UnusedKeys())
}

func TestCheckFlow(t *testing.T) {
	require.NoError(t, grpcauth.Config{}.CheckFlow())
	require.NoError(t, grpcauth.Config{ClientID: "x"}.CheckFlow())
	require.ErrorContains(t, grpcauth.Config{AuthType: "magic"}.CheckFlow(), "unknown authType")
}
