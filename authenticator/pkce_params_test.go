package authenticator_test

import (
	"io"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
)

// A login that asks for offline_access asks for consent too (OpenID
// Connect Core §11: a certified provider issues no refresh token without
// it); extra parameters from the config reach the authorization request;
// a prompt of the config's own wins.
func TestPKCEAuthorizationRequestParameters(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		params url.Values
		want   url.Values // parameters the request must carry
		absent []string   // parameters it must not
	}{
		{name: "offline_access asks for consent", scopes: []string{"openid", "offline_access"}, want: url.Values{"prompt": {"consent"}}},
		{name: "Hydra's offline does not", scopes: []string{"openid", "offline"}, absent: []string{"prompt"}},
		{name: "the config's prompt wins", scopes: []string{"openid", "offline_access"},
			params: url.Values{"prompt": {"select_account consent"}}, want: url.Values{"prompt": {"select_account consent"}}},
		{name: "extra parameters", scopes: []string{"openid"},
			params: url.Values{"login_hint": {"me@example.com"}, "acr_values": {"mfa"}},
			want:   url.Values{"login_hint": {"me@example.com"}, "acr_values": {"mfa"}}, absent: []string{"prompt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newPKCEFixture(t)
			cfg := fx.cfg.Clone()
			cfg.Scopes = tt.scopes
			f := fx.flow(t, func(c *authenticator.PKCEConfig) { c.AuthParams = tt.params })
			_, err := f.Token(t.Context(), cfg, nil)
			require.NoError(t, err)
			fx.lastPage(t)
			q := fx.as.LastAuthorization()
			for k, v := range tt.want {
				assert.Equal(t, v, q[k], k)
			}
			for _, k := range tt.absent {
				assert.NotContains(t, q, k)
			}
			assert.Equal(t, "code", q.Get("response_type"))
			assert.Equal(t, "S256", q.Get("code_challenge_method"))
		})
	}
}

func TestPKCEAuthParamsCannotReplaceTheFlows(t *testing.T) {
	for _, name := range []string{"state", "redirect_uri", "code_challenge", "client_id", "scope", "response_type", "code_challenge_method"} {
		_, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{Prompter: &loginui.Terminal{Out: io.Discard}, AuthParams: url.Values{name: {"x"}}})
		assert.ErrorContains(t, err, `"`+name+`" is the flow's own parameter`)
	}
}

// RFC 9207: when the server says every authorization response carries its
// issuer, a response from another issuer (a mix-up attack), or one
// without it, is refused; an iss that differs from the metadata's issuer
// is refused even when nothing was promised.
func TestPKCEAuthorizationResponseIssuer(t *testing.T) {
	const issuer = "https://idp.example"
	tests := []struct {
		name     string
		sent     string // the iss the server puts in its response; "" for none
		promised bool
		wantErr  bool
	}{
		{"promised and right", issuer, true, false},
		{"promised, right with a slash", issuer + "/", true, false},
		{"promised and wrong", "https://evil.example", true, true},
		{"promised and missing", "", true, true},
		{"not promised, none sent", "", false, false},
		{"not promised, but wrong", "https://evil.example", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []testserver.AuthorizeOption
			if tt.sent != "" {
				opts = append(opts, testserver.WithResponseIssuer(tt.sent))
			}
			fx := newPKCEFixture(t, opts...)
			cfg := fx.cfg.Clone()
			cfg.Issuer, cfg.IssuerInAuthorizationResponse = issuer, tt.promised
			_, err := fx.flow(t).Token(t.Context(), cfg, nil)
			page := fx.lastPage(t)
			if !tt.wantErr {
				require.NoError(t, err)
				assert.EqualValues(t, 1, fx.as.CodeGrants())
				return
			}
			require.ErrorContains(t, err, "not \"https://idp.example\": refused (RFC 9207")
			assert.Equal(t, 400, page.status)
			assert.Zero(t, fx.as.CodeGrants(), "the code was not exchanged")
		})
	}
}
