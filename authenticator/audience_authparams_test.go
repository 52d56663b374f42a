package authenticator_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
)

// pkceConfig.authParams' audience is skipped only when the configured
// audience goes under the same name: with audienceParam resource the
// authorization request carries the config's audience as resource AND
// the authParams' other audience, so the configured one no longer wins
// (Auth0 reads audience and issues a token for the other API).
func TestPKCEAuthParamsAudienceDoesNotOverrideConfiguredResource(t *testing.T) {
	fx := newPKCEFixture(t)
	cfg := fx.cfg.Clone()
	cfg.Audience, cfg.AudienceParam = testAudience, "resource"
	f := fx.flow(t, func(c *authenticator.PKCEConfig) { c.AuthParams = url.Values{"audience": {"https://other.example"}} })
	_, err := f.Token(t.Context(), cfg, nil)
	require.NoError(t, err)
	fx.lastPage(t)
	q := fx.as.LastAuthorization()
	assert.Equal(t, testAudience, q.Get("resource"))
	assert.NotContains(t, q, "audience", "a second, different audience rides along with the configured one")
}
