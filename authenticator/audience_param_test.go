package authenticator_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/configstore"
)

const testAudience = "https://flyte.example/api"

// audienceParamCases: how each choice sends the audience.
var audienceParamCases = []struct {
	param        string
	want, absent []string
}{
	{"", []string{"audience"}, []string{"resource"}},
	{"audience", []string{"audience"}, []string{"resource"}},
	{"resource", []string{"resource"}, []string{"audience"}},
	{"both", []string{"audience", "resource"}, nil},
}

func checkAudience(t *testing.T, form url.Values, want, absent []string) {
	t.Helper()
	for _, k := range want {
		assert.Equal(t, []string{testAudience}, form[k], k)
	}
	for _, k := range absent {
		assert.NotContains(t, form, k)
	}
}

// RFC 8707's resource indicator, chosen in the config, reaches the token
// endpoint of client credentials.
func TestAudienceParamClientCredentials(t *testing.T) {
	for _, tc := range audienceParamCases {
		t.Run("param="+tc.param, func(t *testing.T) {
			ts := newDefaultTokenServer(t)
			a := newAuth(t, configstore.NewStatic(configstore.ClientConfig{
				TokenEndpoint: ts.TokenURL(), Audience: testAudience, AudienceParam: tc.param,
			}))
			require.NoError(t, a.RefreshCredentials(t.Context()))
			checkAudience(t, ts.LastRequest().Form, tc.want, tc.absent)
		})
	}
}

// The browser login sends it with the authorization request, and the
// resource indicator with the code exchange too (RFC 8707 §2.2).
func TestAudienceParamBrowserLogin(t *testing.T) {
	for _, tc := range audienceParamCases {
		t.Run("param="+tc.param, func(t *testing.T) {
			fx := newPKCEFixture(t)
			cfg := fx.cfg.Clone()
			cfg.Audience, cfg.AudienceParam = testAudience, tc.param
			_, err := fx.flow(t).Token(t.Context(), cfg, nil)
			require.NoError(t, err)
			fx.lastPage(t)
			checkAudience(t, fx.as.LastAuthorization(), tc.want, tc.absent)
			exchange := fx.as.LastTokenRequest()
			assert.Equal(t, "authorization_code", exchange.Get("grant_type"))
			if tc.param == "resource" || tc.param == "both" {
				assert.Equal(t, testAudience, exchange.Get("resource"))
			} else {
				assert.NotContains(t, exchange, "resource")
			}
			assert.NotContains(t, exchange, "audience", "Auth0's audience goes with the authorization request only")
		})
	}
}

// The device login sends it with the device authorization request.
func TestAudienceParamDeviceLogin(t *testing.T) {
	for _, tc := range audienceParamCases {
		t.Run("param="+tc.param, func(t *testing.T) {
			w := newDeviceWorld(t, nil)
			w.cfg.Audience, w.cfg.AudienceParam = testAudience, tc.param
			w.approveAt(t, 1)
			_, err := w.token(t.Context(), nil)
			require.NoError(t, err)
			checkAudience(t, w.srv.LastAuthorizationRequest().Form, tc.want, tc.absent)
		})
	}
}
