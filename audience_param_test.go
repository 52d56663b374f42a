package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

// audienceParam: resource sends RFC 8707's resource indicator instead of
// Auth0's audience, however it is spelled (" Resource\n" from a file or
// the environment too); an unknown value is an error that names it.
func TestConfigAudienceParam(t *testing.T) {
	f := newFixture(t, fixtureOptions{plaintext: true})
	cfg := f.config()
	cfg.Insecure, cfg.Audience = true, "https://flyte.example"
	for _, spelling := range []string{"resource", " Resource\n"} {
		cfg.AudienceParam = spelling
		c := dial(t, cfg)
		require.NoError(t, c.Authenticator.RefreshCredentials(t.Context()))
		form := f.tokens.LastRequest().Form
		assert.Equal(t, "https://flyte.example", form.Get("resource"), "%q", spelling)
		assert.NotContains(t, form, "audience", "%q", spelling)
	}

	cfg.AudienceParam = "aud"
	_, err := grpcauth.New(cfg)
	assert.ErrorContains(t, err, `audienceParam "aud": want audience, resource or both`)
}
