package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

// tokenCache: file or keyring, however spelled; anything else is an error
// that names the key and the value.
func TestConfigTokenCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	for _, v := range []string{"", "file", "keyring", " Keyring\n"} {
		c, err := grpcauth.New(grpcauth.Config{Endpoint: "dns:///flyte.example.com", AuthType: grpcauth.AuthTypePkce, TokenCache: v})
		require.NoError(t, err, "%q", v)
		require.NoError(t, c.Close())
	}
	_, err := grpcauth.New(grpcauth.Config{Endpoint: "dns:///flyte.example.com", AuthType: grpcauth.AuthTypePkce, TokenCache: "vault"})
	assert.ErrorContains(t, err, `tokenCache "vault": want file or keyring`)
}
