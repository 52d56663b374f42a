package authenticator_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/netconf"
)

func TestNewDoesNoIO(t *testing.T) {
	ts := newDefaultTokenServer(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := newCA(t)
	require.NoError(t, os.WriteFile(caFile, ca.CertPEM(), 0o600))

	optionSets := map[string][]authenticator.Option{
		"defaults":   nil,
		"token URL":  {authenticator.WithTokenURL(ts.TokenURL())},
		"TLS, proxy": {httpVia(t, netconf.Settings{CAFile: caFile, ProxyURL: "http://127.0.0.1:1"})},
		"skip verify and logger": {
			httpVia(t, netconf.Settings{SkipVerify: true}),
			authenticator.WithLogger(discardLogger()),
		},
		"http client": {authenticator.WithHTTPClient(&http.Client{})},
	}
	for name, opts := range optionSets {
		t.Run(name, func(t *testing.T) {
			store := newFakeStore(configstore.ClientConfig{TokenEndpoint: ts.TokenURL()})
			a, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, testSecret, store, opts...)
			require.NoError(t, err)
			require.NotNil(t, a)
			assert.Zero(t, store.calls.Load(), "the store is not asked at construction")
			assert.Zero(t, ts.Requests(), "no token request at construction")
			assert.Equal(t, authenticator.Stats{}, a.Stats())
		})
	}
	t.Run("secret source", func(t *testing.T) {
		store := newFakeStore(configstore.ClientConfig{TokenEndpoint: ts.TokenURL()})
		a := newAuthWithSecret(t, store, authenticator.SecretFromFile(filepath.Join(t.TempDir(), "missing")))
		assert.Zero(t, store.calls.Load(), "the store is not asked at construction")
		assert.Zero(t, ts.Requests(), "no token request at construction")
		assert.Equal(t, authenticator.Stats{}, a.Stats())
	})
}

func TestNewIgnoresNilOption(t *testing.T) {
	store := newFakeStore(configstore.ClientConfig{})
	var a *authenticator.Keeper
	require.NotPanics(t, func() {
		var err error
		a, err = authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, testSecret, store,
			nil, authenticator.WithAudience("a"), nil)
		require.NoError(t, err)
	})
	require.NotNil(t, a)
}

func TestNewAcceptsASecretSource(t *testing.T) {
	store := newFakeStore(configstore.ClientConfig{})
	a := newAuthWithSecret(t, store, authenticator.SecretFromEnv("GRPCAUTH_TEST_UNUSED"))
	require.NotNil(t, a)
	assert.Zero(t, store.calls.Load())
}

func TestClientCredentialsRejectsBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		id     string
		secret authenticator.SecretSource
		want   string
	}{
		"empty client id": {id: "", secret: authenticator.SecretFromValue(testSecret), want: "client id is empty"},
		"blank client id": {id: " \t", secret: authenticator.SecretFromValue(testSecret), want: "client id is empty"},
		"nil source":      {id: testClientID, secret: nil, want: "secret source is nil"},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := authenticator.ClientCredentials(tc.id, tc.secret)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "authenticator: ")
		})
	}
	_, err := authenticator.New(testEndpoint, newFakeStore(configstore.ClientConfig{}), nil)
	assert.ErrorContains(t, err, "flow is nil")
}

func TestNewRejectsBadInput(t *testing.T) {
	store := newFakeStore(configstore.ClientConfig{})

	tests := []struct {
		name    string
		spoil   func(*ctorArgs) // nil: the arguments stay valid
		opts    []authenticator.Option
		wantIs  error
		want    []string // substrings of the message
		notWant []string
	}{
		{name: "empty endpoint", spoil: func(c *ctorArgs) { c.endpoint = "" }, want: []string{"endpoint is empty"}},
		{name: "blank endpoint", spoil: func(c *ctorArgs) { c.endpoint = "  " }, want: []string{"endpoint is empty"}},
		{name: "empty client id", spoil: func(c *ctorArgs) { c.clientID = "" }, want: []string{"client id is empty"}},
		{name: "blank client id", spoil: func(c *ctorArgs) { c.clientID = " \t" }, want: []string{"client id is empty"}},
		{name: "empty secret", spoil: func(c *ctorArgs) { c.secret = "" }, wantIs: authenticator.ErrEmptySecret, want: []string{"secret is empty"}},
		{name: "blank secret", spoil: func(c *ctorArgs) { c.secret = " \n\t " }, wantIs: authenticator.ErrEmptySecret, want: []string{"secret is empty"}},
		{name: "nil store", spoil: func(c *ctorArgs) { c.store = nil }, want: []string{"config store is nil"}},
		{name: "header key with a space", opts: []authenticator.Option{authenticator.WithHeaderKey("my key")}, want: []string{"WithHeaderKey", `"my key"`}},
		{name: "binary header key", opts: []authenticator.Option{authenticator.WithHeaderKey("token-bin")}, want: []string{"WithHeaderKey", "token-bin"}},
		{name: "reserved header key", opts: []authenticator.Option{authenticator.WithHeaderKey("grpc-auth")}, want: []string{"WithHeaderKey", "grpc-auth"}},
		{name: "blank header key", opts: []authenticator.Option{authenticator.WithHeaderKey("  ")}, want: []string{"WithHeaderKey", `""`}},
		{name: "token URL not absolute", opts: []authenticator.Option{authenticator.WithTokenURL("/oauth2/token")}, want: []string{"WithTokenURL"}},
		{
			name:    "token URL with another scheme",
			opts:    []authenticator.Option{authenticator.WithTokenURL("ftp://user:url-password@host/token")},
			want:    []string{"WithTokenURL"},
			notWant: []string{"url-password"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case starts from valid arguments and spoils one.
			args := ctorArgs{endpoint: testEndpoint, clientID: testClientID, secret: testSecret, store: store}
			if tt.spoil != nil {
				tt.spoil(&args)
			}
			a, err := authenticator.NewClientCredentialsAuthenticator(args.endpoint, args.clientID, args.secret, args.store, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, a)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			for _, w := range tt.notWant {
				assert.NotContains(t, err.Error(), w)
			}
			requireNoSecret(t, err.Error())
		})
	}
	assert.Zero(t, store.calls.Load())
}

// ctorArgs are the required arguments of NewClientCredentialsAuthenticator.
type ctorArgs struct {
	endpoint, clientID, secret string
	store                      configstore.ClientConfigStore
}
