//go:build unix

package grpcauth_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

// command and proxyCommand do not see the variables that hold this
// process's secrets; the rest of the environment they do (issue 23, item
// 15).
func TestCommandsDoNotSeeOurSecrets(t *testing.T) {
	t.Setenv("FLYTE_CREDENTIALS_CLIENT_SECRET", "env-secret")
	t.Setenv("MY_SECRET_VAR", "var-secret")
	t.Setenv("SOME_OTHER_VAR", "visible")
	script := `printf '%s-%s-%s' "${FLYTE_CREDENTIALS_CLIENT_SECRET:-hidden}" "${MY_SECRET_VAR:-hidden}" "${SOME_OTHER_VAR:-gone}"`
	cfg := grpcauth.Config{Endpoint: "localhost:1", Insecure: true, ClientSecretEnvVar: "MY_SECRET_VAR", AuthorizationHeader: "authorization",
		AuthType: grpcauth.AuthTypeExternalCommand, Command: []string{"sh", "-c", script},
		ProxyCommand: []string{"sh", "-c", script}}
	c, err := grpcauth.New(cfg)
	require.NoError(t, err)
	defer c.Close()
	_, value, err := c.Authenticator.Credential(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "Bearer hidden-hidden-visible", value)
	_, value, err = c.Proxy.Credential(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "Bearer hidden-hidden-visible", value)
}
