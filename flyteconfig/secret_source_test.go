package flyteconfig_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
)

func TestSecretSource(t *testing.T) {
	env := map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR": "MY_VAR"}
	l, err := flyteconfig.Load(flyteconfig.Options{
		LookupEnv: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
		HomeDir:   t.TempDir(),
	})
	require.NoError(t, err)
	assert.Equal(t, "environment variable MY_VAR (clientSecretEnvVar, from env FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR)", l.SecretSource())
	l.Config.ClientSecretEnvVar = ""
	assert.Equal(t, "file /etc/secrets/client_secret (clientSecretLocation, from default)", l.SecretSource())
	l.Config.ClientSecret = "shh"
	assert.Equal(t, "Config.ClientSecret (from explicit)", l.SecretSource())
	assert.NotContains(t, l.SecretSource(), "shh")
	assert.Equal(t, "none", (&flyteconfig.Loaded{}).SecretSource())
}
