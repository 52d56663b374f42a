package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// audienceParam: resource sends RFC 8707's resource indicator instead of
// Auth0's audience, however it is spelled (" Resource\n" from a file or
// the environment too); an unknown value is an error that names it.
func TestConfigAudienceParam(t *testing.T) {
	tokens, err := testserver.NewTokenServer(testserver.WithClient("id", "secret"))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	cfg := grpcauth.Config{Endpoint: admin.Addr(), Insecure: true, ClientID: "id", ClientSecret: "secret",
		Audience: "https://flyte.example"}
	for _, spelling := range []string{"resource", " Resource\n"} {
		cfg.AudienceParam = spelling
		c, err := grpcauth.New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.Authenticator.RefreshCredentials(t.Context()))
		form := tokens.LastRequest().Form
		assert.Equal(t, "https://flyte.example", form.Get("resource"), "%q", spelling)
		assert.NotContains(t, form, "audience", "%q", spelling)
	}

	cfg.AudienceParam = "aud"
	_, err = grpcauth.New(cfg)
	assert.ErrorContains(t, err, `audienceParam "aud": want audience, resource or both`)
}
