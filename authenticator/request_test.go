package authenticator_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func TestTokenRequestWireFormat(t *testing.T) {
	tests := []struct {
		name      string
		opts      []authenticator.Option
		wantForm  url.Values
		wantScope []string // as the token server recorded them
	}{
		{
			name:     "no scope, no audience",
			wantForm: url.Values{"grant_type": {"client_credentials"}},
		},
		{
			name:      "scopes space-joined and audience",
			opts:      []authenticator.Option{authenticator.WithScopes("read:all", "write", "offline"), authenticator.WithAudience("https://api.example/")},
			wantForm:  url.Values{"grant_type": {"client_credentials"}, "scope": {"read:all write offline"}, "audience": {"https://api.example/"}},
			wantScope: []string{"read:all", "write", "offline"},
		},
		{
			name:      "one scope, no audience",
			opts:      []authenticator.Option{authenticator.WithScopes("all")},
			wantForm:  url.Values{"grant_type": {"client_credentials"}, "scope": {"all"}},
			wantScope: []string{"all"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newDefaultTokenServer(t)
			a := newAuth(t, staticFor(ts), tt.opts...)

			require.NoError(t, a.RefreshCredentials(context.Background()))

			last := ts.LastRequest()
			assert.Equal(t, http.MethodPost, last.Method)
			assert.Equal(t, testserver.TokenPath, last.Path)
			assert.Equal(t, "application/x-www-form-urlencoded", last.Header.Get("Content-Type"))
			assert.Equal(t, tt.wantForm, last.Form, "the exact form body")
			id, secret := basicCredentials(t, last.BasicAuthHeader)
			assert.Equal(t, url.QueryEscape(testClientID), id)
			assert.Equal(t, url.QueryEscape(testSecret), secret)

			info, err := ts.Validate(context.Background(), accessToken(t, currentValue(t, a)))
			require.NoError(t, err, "the token attached is the one issued")
			assert.Equal(t, testClientID, info.ClientID)
			assert.Equal(t, tt.wantScope, info.Scopes)
		})
	}
}

func TestSecretWithSpecialCharactersGetsAToken(t *testing.T) {
	secrets := []string{
		"a+b",
		"a/b",
		"a:b",
		"a%b",
		"a%20b",
		"a&b=c",
		"with inner spaces",
		"+/:%&= all of them",
		"ünïcödé",
	}
	for _, secret := range secrets {
		t.Run(secret, func(t *testing.T) {
			ts := newTokenServer(t, testserver.WithClient("id:with+odd chars", secret))
			a, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, "id:with+odd chars", secret, staticFor(ts))
			require.NoError(t, err)
			require.NoError(t, a.RefreshCredentials(context.Background()))
			assert.EqualValues(t, 1, ts.Issued())
			_, raw := basicCredentials(t, ts.LastRequest().BasicAuthHeader)
			assert.Equal(t, url.QueryEscape(secret), raw)
		})
	}
}

func TestScopesAndAudiencePrecedence(t *testing.T) {
	storeCfg := configstore.ClientConfig{Scopes: []string{"store-a", "store-b"}, Audience: "store-audience"}
	tests := []struct {
		name         string
		cfg          configstore.ClientConfig
		opts         []authenticator.Option
		wantScope    []string // nil: no scope parameter
		wantAudience []string // nil: no audience parameter
	}{
		{
			name:         "the store's when no option",
			cfg:          storeCfg,
			wantScope:    []string{"store-a store-b"},
			wantAudience: []string{"store-audience"},
		},
		{
			name:         "explicit options win",
			cfg:          storeCfg,
			opts:         []authenticator.Option{authenticator.WithScopes("mine"), authenticator.WithAudience("my-audience")},
			wantScope:    []string{"mine"},
			wantAudience: []string{"my-audience"},
		},
		{
			name:         "WithScopes() sends no scope whatever the store says",
			cfg:          storeCfg,
			opts:         []authenticator.Option{authenticator.WithScopes()},
			wantAudience: []string{"store-audience"},
		},
		{
			name:         "explicit scopes, the store's audience",
			cfg:          storeCfg,
			opts:         []authenticator.Option{authenticator.WithScopes("x", "y")},
			wantScope:    []string{"x y"},
			wantAudience: []string{"store-audience"},
		},
		{
			name: "neither: no scope, no audience",
		},
		{
			name:         "explicit audience with a store that has none",
			opts:         []authenticator.Option{authenticator.WithAudience("only-mine")},
			wantAudience: []string{"only-mine"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newDefaultTokenServer(t)
			cfg := tt.cfg
			cfg.TokenEndpoint = ts.TokenURL()
			a := newAuth(t, configstore.NewStatic(cfg), tt.opts...)

			require.NoError(t, a.RefreshCredentials(context.Background()))

			form := ts.LastRequest().Form
			assert.Equal(t, tt.wantScope, form["scope"])
			assert.Equal(t, tt.wantAudience, form["audience"])
		})
	}
}

func TestHeaderKeyPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		storeKey string
		opts     []authenticator.Option
		wantKey  string
	}{
		{name: "default", wantKey: "authorization"},
		{name: "the store's key", storeKey: "flyte-authorization", wantKey: "flyte-authorization"},
		{name: "the store's key, lower-cased", storeKey: "Flyte-Authorization", wantKey: "flyte-authorization"},
		{name: "WithHeaderKey wins over the store", storeKey: "flyte-authorization", opts: []authenticator.Option{authenticator.WithHeaderKey("x-my-auth")}, wantKey: "x-my-auth"},
		{name: "WithHeaderKey without a store key", opts: []authenticator.Option{authenticator.WithHeaderKey("X-Upper")}, wantKey: "x-upper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newDefaultTokenServer(t)
			store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: ts.TokenURL(), HeaderKey: tt.storeKey})
			a := newAuth(t, store, tt.opts...)

			key, value, ok := credOK(a.Credential(context.Background()))
			require.True(t, ok, "the first call gets a token")
			assert.Equal(t, tt.wantKey, key)
			_, err := ts.Validate(context.Background(), accessToken(t, value))
			require.NoError(t, err, `the value is "Bearer <issued token>"`)
		})
	}
}

func TestInvalidHeaderKeyFromStore(t *testing.T) {
	ts := newDefaultTokenServer(t)
	store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: ts.TokenURL(), HeaderKey: "bad key\n"})
	a := newAuth(t, store)

	err := a.RefreshCredentials(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "header key")
	assert.Zero(t, ts.Requests(), "no token is requested for a key that cannot carry it")
}

func TestConfigFromRemoteStore(t *testing.T) {
	ts := newDefaultTokenServer(t)
	admin := newAdmin(t, ts)
	admin.SetPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
		Scopes:                   []string{"all", "offline"},
		Audience:                 "admin-audience",
		AuthorizationMetadataKey: "flyte-authorization",
	})
	store := newRemote(t, admin)
	a := newAuth(t, store)

	calls, _ := admin.MetadataCalls()
	require.Zero(t, calls, "construction asks nothing")

	require.NoError(t, a.RefreshCredentials(context.Background()))
	form := ts.LastRequest().Form
	assert.Equal(t, []string{"all offline"}, form["scope"])
	assert.Equal(t, []string{"admin-audience"}, form["audience"])
	key, value, ok := credOK(a.Credential(context.Background()))
	require.True(t, ok)
	assert.Equal(t, "flyte-authorization", key)
	_, err := ts.Validate(context.Background(), accessToken(t, value))
	require.NoError(t, err)

	require.NoError(t, a.RefreshCredentials(context.Background()))
	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.EqualValues(t, 1, oauth2Calls, "the store caches its answer")
	assert.EqualValues(t, 1, publicCalls)
	assert.EqualValues(t, 2, ts.Issued())
	assert.False(t, admin.MetadataRPCsSawToken(), "the metadata RPCs are anonymous")
}
