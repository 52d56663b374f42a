package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// build accepts audienceParam after TrimSpace/ToLower, but the value is
// handed on untrimmed and audienceParams only lower-cases it: " resource"
// (or "resource\n" from a file or the environment) passes the check and
// then silently sends Auth0's audience instead of the resource indicator.
func TestConfigAudienceParamWithSpaceIsHonoured(t *testing.T) {
	tokens, err := testserver.NewTokenServer(testserver.WithClient("id", "secret"))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	cfg := grpcauth.Config{Endpoint: admin.Addr(), Insecure: true, ClientID: "id", ClientSecret: "secret",
		Audience: "https://flyte.example", AudienceParam: "resource "}
	c, err := grpcauth.New(cfg)
	require.NoError(t, err, "accepted as resource")
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Authenticator.RefreshCredentials(t.Context()))
	form := tokens.LastRequest().Form
	assert.Equal(t, "https://flyte.example", form.Get("resource"))
	assert.NotContains(t, form, "audience")
}
