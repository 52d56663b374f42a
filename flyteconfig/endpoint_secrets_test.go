package flyteconfig_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
)

// TestEndpointUserinfoNeverInError: an endpoint URL with a password
// is refused, and the refusal must not print the password. A password
// holding '/', '?' or '#' (a base64 secret pasted raw) ends the authority
// early for redact.URL, which then leaves it in the message.
func TestEndpointUserinfoNeverInError(t *testing.T) {
	for _, ep := range []string{
		"https://app:s3cr/et+Zz==@flyte.example",
		"https://app:s3cr?et@flyte.example",
		"https://app:s3cr#et@flyte.example",
		"grpcs://app:s3cr/et@flyte.example",
	} {
		t.Run(ep, func(t *testing.T) {
			_, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_PLATFORM_URL": ep}.lookup})
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "s3cr", "the password shows in the error")
		})
	}
}

// TestSchemeInsecureGoesWithItsEndpoint: an http:// endpoint makes
// the connection plaintext "from the scheme of the endpoint". When a
// source that wins (a flyte-sdk or flytekit variable, the in-cluster
// override) replaces that endpoint with dns:///host or host:port and
// nobody set insecure, the plaintext of the replaced endpoint stays: the
// production host is dialed without TLS, tokens and secrets in cleartext.
func TestSchemeInsecureGoesWithItsEndpoint(t *testing.T) {
	key := apiKey("http://localhost:8080", "app-id", keySecret, "None")
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{
		"FLYTE_API_KEY":        key,
		"FLYTE_ADMIN_ENDPOINT": "dns:///prod.flyte.example:443",
	}.lookup})
	require.NoError(t, err)
	require.Equal(t, "dns:///prod.flyte.example:443", l.Config.Endpoint)
	assert.False(t, l.Config.Insecure, "insecure comes from %s", l.Source("insecure"))
}
