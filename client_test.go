package grpcauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testClientID = "test-client"
	testSecret   = "test-secret-0123456789"
)

// fixture is a token server and an admin server on loopback TCP, with TLS
// from a throwaway CA unless plaintext is asked for.
type fixture struct {
	ca     *testserver.CA
	caFile string
	tokens *testserver.TokenServer
	admin  *testserver.AdminServer
}

type fixtureOptions struct {
	plaintext bool
	token     []testserver.TokenOption
	admin     []testserver.AdminOption
	// oauth2 replaces the advertised metadata; by default it names the
	// token server's endpoint.
	oauth2 *authmetapb.OAuth2MetadataResponse
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{}
	var err error
	f.ca, err = testserver.NewCA()
	require.NoError(t, err)
	f.caFile, err = f.ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)

	topts := []testserver.TokenOption{testserver.WithClient(testClientID, testSecret)}
	if !o.plaintext {
		topts = append(topts, testserver.WithTokenTLS(f.ca))
	}
	f.tokens, err = testserver.NewTokenServer(append(topts, o.token...)...)
	require.NoError(t, err)
	t.Cleanup(f.tokens.Close)

	meta := o.oauth2
	if meta == nil {
		meta = &authmetapb.OAuth2MetadataResponse{Issuer: f.tokens.URL(), TokenEndpoint: f.tokens.TokenURL()}
	}
	aopts := []testserver.AdminOption{
		testserver.WithTCP(),
		testserver.WithValidator(f.tokens),
		testserver.WithOAuth2Metadata(meta),
	}
	if !o.plaintext {
		aopts = append(aopts, testserver.WithAdminTLS(f.ca))
	}
	f.admin, err = testserver.NewAdminServer(append(aopts, o.admin...)...)
	require.NoError(t, err)
	t.Cleanup(f.admin.Close)
	return f
}

// config is a client-credentials Config for the fixture.
func (f *fixture) config() grpcauth.Config {
	cfg := grpcauth.Config{
		Endpoint:     "dns:///" + f.admin.Addr(),
		ClientID:     testClientID,
		ClientSecret: testSecret,
	}
	if f.ca != nil {
		cfg.CACertFilePath = f.caFile
	}
	return cfg
}

func dial(t *testing.T, cfg grpcauth.Config, opts ...grpcauth.Option) *grpcauth.Client {
	t.Helper()
	c, err := grpcauth.New(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewClientEndToEnd(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	_, port, _ := strings.Cut(f.admin.Addr(), ":")
	endpoints := []string{
		"dns:///" + f.admin.Addr(),
		f.admin.Addr(),
		"dns:///localhost:" + port,
		"localhost:" + port,
	}
	for _, endpoint := range endpoints {
		t.Run(endpoint, func(t *testing.T) {
			f.tokens.ResetCounters()
			f.admin.ResetCounters()
			cfg := f.config()
			cfg.Endpoint = endpoint
			conn, err := grpcauth.NewClient(cfg)
			require.NoError(t, err)
			defer conn.Close()

			echo := testserver.NewEchoClient(conn)
			got, err := echo.Unary(callCtx(t), "hello")
			require.NoError(t, err)
			assert.Equal(t, "hello", got)

			streamed, err := echo.ServerStream(callCtx(t), "s")
			require.NoError(t, err)
			assert.Equal(t, []string{"s-0", "s-1", "s-2"}, streamed)

			assert.Equal(t, int64(1), f.tokens.Issued(), "one token for both calls")
			oauth2Calls, publicCalls := f.admin.MetadataCalls()
			assert.Equal(t, int64(1), oauth2Calls)
			assert.Equal(t, int64(1), publicCalls)
			assert.False(t, f.admin.MetadataRPCsSawToken(), "AuthMetadataService calls are anonymous")
		})
	}
}

func TestNewClientDoesNoIO(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := dial(t, f.config())

	assert.Equal(t, connectivity.Idle, c.Conn.GetState())
	assert.Zero(t, f.tokens.Requests())
	oauth2Calls, publicCalls := f.admin.MetadataCalls()
	assert.Zero(t, oauth2Calls+publicCalls)
	assert.Zero(t, f.admin.EchoCalls())
	assert.Equal(t, authenticator.Stats{}, c.Authenticator.Stats())
}

func TestNewClientStatsAndRetry(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var retries atomic.Int64
	c := dial(t, f.config(), grpcauth.WithInterceptorOptions(interceptor.WithOnRetry(func(string, codes.Code) {
		retries.Add(1)
	})))
	echo := testserver.NewEchoClient(c.Conn)

	_, err := echo.Unary(callCtx(t), "one")
	require.NoError(t, err)
	f.tokens.RevokeAll()
	_, err = echo.Bidi(callCtx(t), []string{"two"})
	require.NoError(t, err)

	// A client stream that was half-closed before the rejection arrived is
	// replayed in full, CloseSend included.
	f.tokens.RevokeAll()
	joined, err := echo.ClientStream(callCtx(t), []string{"a", "b", "c"})
	require.NoError(t, err)
	assert.Equal(t, "a,b,c", joined)

	assert.Equal(t, int64(2), retries.Load(), "the first call carried a fresh token, the others a revoked one")
	st := c.Authenticator.Stats()
	assert.Equal(t, int64(3), st.TokenRequests)
	assert.Equal(t, int64(1), st.FirstUse)
	assert.Equal(t, int64(2), st.Rejected)
	assert.Equal(t, int64(3), f.tokens.Issued())
	require.NotNil(t, c.ConfigStore)
	cc, err := c.ConfigStore.GetClientConfig(callCtx(t))
	require.NoError(t, err)
	assert.Equal(t, f.tokens.TokenURL(), cc.TokenEndpoint)
}

func TestNewClientInsecure(t *testing.T) {
	f := newFixture(t, fixtureOptions{plaintext: true})
	cfg := f.config()
	cfg.CACertFilePath = ""
	cfg.Insecure = true
	c := dial(t, cfg)

	got, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "plain")
	require.NoError(t, err)
	assert.Equal(t, "plain", got)
}

func TestNewClientConfigWinsOverAdmin(t *testing.T) {
	f := newFixture(t, fixtureOptions{
		// The advertised endpoint is useless: tokenUrl must win.
		oauth2: &authmetapb.OAuth2MetadataResponse{TokenEndpoint: "https://127.0.0.1:1/nowhere"},
		admin: []testserver.AdminOption{
			testserver.WithHeaderKey("flyte-authorization"),
			testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
				Scopes:                   []string{"server-scope"},
				Audience:                 "server-audience",
				AuthorizationMetadataKey: "authorization",
			}),
		},
	})
	cfg := f.config()
	cfg.TokenURL = f.tokens.TokenURL()
	cfg.Scopes = []string{"a", "b"}
	cfg.Audience = "my-audience"
	cfg.AuthorizationHeader = "Flyte-Authorization"
	c := dial(t, cfg)

	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.NoError(t, err)
	req := f.tokens.LastRequest()
	assert.Equal(t, "a b", req.Form.Get("scope"))
	assert.Equal(t, "my-audience", req.Form.Get("audience"))
	assert.NotEmpty(t, f.admin.LastEchoMetadata().Get("flyte-authorization"))
}

func TestNewClientAdminFillsIn(t *testing.T) {
	f := newFixture(t, fixtureOptions{
		admin: []testserver.AdminOption{
			testserver.WithHeaderKey("flyte-authorization"),
			testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
				Scopes:                   []string{"all"},
				Audience:                 "admin-audience",
				AuthorizationMetadataKey: "flyte-authorization",
			}),
		},
	})
	cfg := f.config()
	cfg.UseAudienceFromAdmin = false // accepted; the admin's audience fills in anyway
	c := dial(t, cfg)

	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.NoError(t, err)
	req := f.tokens.LastRequest()
	assert.Equal(t, "all", req.Form.Get("scope"))
	assert.Equal(t, "admin-audience", req.Form.Get("audience"))
}

func TestWithAuthenticatorOptionsWin(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cfg := f.config()
	cfg.TokenURL = "https://127.0.0.1:1/wrong"
	cfg.Audience = "from-config"
	c := dial(t, cfg, grpcauth.WithAuthenticatorOptions(
		authenticator.WithTokenURL(f.tokens.TokenURL()),
		authenticator.WithAudience("from-option"),
	))

	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.NoError(t, err)
	assert.Equal(t, "from-option", f.tokens.LastRequest().Form.Get("audience"))
}

func TestNewClientCallerOptionsComeLast(t *testing.T) {
	// TLS admin, plaintext token server: the Config trusts only the system
	// roots, the caller's transport credentials trust the CA.
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	tokens, err := testserver.NewTokenServer(testserver.WithClient(testClientID, testSecret))
	require.NoError(t, err)
	defer tokens.Close()
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithAdminTLS(ca), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	defer admin.Close()

	var sawToken atomic.Bool
	record := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == testserver.EchoUnaryMethod {
			md, _ := metadata.FromOutgoingContext(ctx)
			for _, o := range opts {
				switch o.(type) {
				// The interceptor's per-RPC credentials are their own
				// call option, embedding grpc.PerRPCCredsCallOption.
				case grpc.PerRPCCredsCallOption, credentials.PerRPCCredentials:
					sawToken.Store(true)
				}
			}
			if len(md.Get("authorization")) > 0 {
				sawToken.Store(true)
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c := dial(t, grpcauth.Config{Endpoint: admin.Addr(), ClientID: testClientID, ClientSecret: testSecret},
		grpcauth.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(ca.ClientTLSConfig())),
			grpc.WithChainUnaryInterceptor(record)))

	got, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "mine")
	require.NoError(t, err)
	assert.Equal(t, "mine", got)
	assert.False(t, sawToken.Load(), "the token rides on the connection's per-RPC credentials, not on a call option")
	assert.Len(t, admin.LastEchoMetadata().Get("authorization"), 1, "the token went over the caller's TLS credentials")
}

func TestNewClientNoAuth(t *testing.T) {
	admin, err := testserver.NewAdminServer(testserver.WithTCP())
	require.NoError(t, err)
	defer admin.Close()

	admin.SetRequireAuth(false)

	// No authType, no clientId: flytekit's default, a browser login that
	// starts only when a server asks for a token. An open server never
	// does, so nothing is asked of FlyteAdmin and no token is requested.
	c := dial(t, grpcauth.Config{Endpoint: admin.Addr(), Insecure: true})
	got, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "open")
	require.NoError(t, err)
	assert.Equal(t, "open", got)
	assert.Equal(t, authenticator.Stats{}, c.Authenticator.Stats())
	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.Zero(t, oauth2Calls+publicCalls)
	assert.Empty(t, admin.LastEchoMetadata().Get("authorization"))
}

func TestNewClientSecretFromEnvVar(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	t.Setenv("GRPCAUTH_TEST_CLIENT_SECRET", "  "+testSecret+"\n")
	cfg := f.config()
	cfg.ClientSecret = ""
	cfg.ClientSecretEnvVar = "GRPCAUTH_TEST_CLIENT_SECRET"
	cfg.ClientSecretLocation = "/no/such/file" // the env var wins
	c := dial(t, cfg)

	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.NoError(t, err)
}

func TestNewClientSecretFromFileIsRotated(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	secretFile := writeFile(t, t.TempDir(), "client_secret", "wrong-secret-value\n")
	cfg := f.config()
	cfg.ClientSecret = ""
	cfg.ClientSecretLocation = secretFile
	c := dial(t, cfg)
	echo := testserver.NewEchoClient(c.Conn)

	_, err := echo.Unary(callCtx(t), "x")
	require.Error(t, err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	var te *authenticator.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "invalid_client", te.ErrorCode)
	assert.NotContains(t, err.Error(), "wrong-secret-value")

	// Within the pause after a refusal, the call gets the refusal again,
	// with no token request.
	requests := f.tokens.Requests()
	require.NoError(t, os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600))
	_, err = echo.Unary(callCtx(t), "x")
	require.ErrorContains(t, err, "refused; no new token request for")
	assert.Equal(t, requests, f.tokens.Requests())

	// The next token request, after it, reads the rotated secret.
	require.Eventually(t, func() bool {
		_, err := echo.Unary(callCtx(t), "x")
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the rotated secret is read at the next token request")
	assert.Equal(t, requests+1, f.tokens.Requests())
}

func TestNewClientSecretErrors(t *testing.T) {
	dir := t.TempDir()
	blank := writeFile(t, dir, "blank", " \n\t")
	missing := filepath.Join(dir, "missing")
	t.Setenv("GRPCAUTH_TEST_BLANK_SECRET", "   ")

	tests := []struct {
		name   string
		mutate func(*grpcauth.Config)
		want   []string
		is     error
	}{
		{
			name:   "blank explicit secret",
			mutate: func(c *grpcauth.Config) { c.ClientSecret = "  " },
			want:   []string{"client secret from clientSecret"},
			is:     authenticator.ErrEmptySecret,
		},
		{
			name:   "unset env var",
			mutate: func(c *grpcauth.Config) { c.ClientSecretEnvVar = "GRPCAUTH_TEST_UNSET_SECRET_VAR" },
			want:   []string{"clientSecretEnvVar", "GRPCAUTH_TEST_UNSET_SECRET_VAR", "not set"},
		},
		{
			name:   "blank env var",
			mutate: func(c *grpcauth.Config) { c.ClientSecretEnvVar = "GRPCAUTH_TEST_BLANK_SECRET" },
			want:   []string{"GRPCAUTH_TEST_BLANK_SECRET"},
			is:     authenticator.ErrEmptySecret,
		},
		{
			name:   "missing file",
			mutate: func(c *grpcauth.Config) { c.ClientSecretLocation = missing },
			want:   []string{"clientSecretLocation", missing},
			is:     os.ErrNotExist,
		},
		{
			name:   "blank file",
			mutate: func(c *grpcauth.Config) { c.ClientSecretLocation = blank },
			want:   []string{"clientSecretLocation", blank},
			is:     authenticator.ErrEmptySecret,
		},
		{
			name:   "no secret at all",
			mutate: func(*grpcauth.Config) {},
			is:     grpcauth.ErrNoClientSecret,
		},
		{
			name:   "no client id",
			mutate: func(c *grpcauth.Config) { c.AuthType, c.ClientID, c.ClientSecret = "ClientSecret", "", "x" },
			want:   []string{"needs a clientId"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := grpcauth.Config{Endpoint: "localhost:1", ClientID: "id"}
			tt.mutate(&cfg)
			c, err := grpcauth.New(cfg)
			require.Error(t, err)
			assert.Nil(t, c)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
}

func TestNewClientAuthTypes(t *testing.T) {
	tests := []struct {
		authType string
		err      error  // nil: accepted
		msg      string // part of the error
	}{
		{authType: ""},
		{authType: "ClientSecret"},
		{authType: "clientSecret"},
		{authType: "CLIENTSECRET"},
		{authType: "client_credentials"},
		{authType: "basic"},
		{authType: " Basic "},
		{authType: "Pkce"},
		{authType: "standard"},
		{authType: "deviceflow"},
		{authType: "DeviceFlow"},
		{authType: "ExternalCommand", msg: "authType ExternalCommand needs a command"},
		{authType: "external_process", msg: "authType ExternalCommand needs a command"},
		{authType: "kerberos", msg: `unknown authType "kerberos"`},
	}
	for _, tt := range tests {
		t.Run(tt.authType, func(t *testing.T) {
			cfg := grpcauth.Config{Endpoint: "localhost:1", AuthType: tt.authType, ClientID: "id", ClientSecret: "s"}
			c, err := grpcauth.New(cfg)
			if tt.msg == "" {
				require.NoError(t, err)
				assert.NotNil(t, c.Authenticator)
				require.NoError(t, c.Close())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
			}
		})
	}

	t.Run("proxyCommand", func(t *testing.T) {
		c, err := grpcauth.New(grpcauth.Config{Endpoint: "localhost:1", ProxyCommand: []string{"get-token"}})
		require.NoError(t, err, "no I/O until the first call")
		assert.NotNil(t, c.Proxy)
		assert.NotNil(t, c.Authenticator, "the default browser login, lazily")
		require.NoError(t, c.Close())
	})
}

func TestTarget(t *testing.T) {
	tests := []struct {
		endpoint, want, err string
	}{
		{endpoint: "flyte.example.com:443", want: "flyte.example.com:443"},
		{endpoint: "dns:///flyte.example.com:443", want: "dns:///flyte.example.com:443"},
		{endpoint: " dns:///flyte.example.com ", want: "dns:///flyte.example.com"},
		{endpoint: "", err: "endpoint is empty"},
		{endpoint: "dns:///", err: "has no host"},
		{endpoint: "https://flyte.example.com", err: "is a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			got, err := grpcauth.Config{Endpoint: tt.endpoint}.Target()
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNewClientBadCACert(t *testing.T) {
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "ca.pem", "not a certificate")
	tests := map[string]string{
		filepath.Join(dir, "missing.pem"): "no such file",
		notPEM:                            "no PEM certificate",
	}
	for path, want := range tests {
		_, err := grpcauth.NewClient(grpcauth.Config{Endpoint: "localhost:1", CACertFilePath: path, ClientID: "id", ClientSecret: "s"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "caCertFilePath")
		assert.Contains(t, err.Error(), want)
	}
}

func TestRefreshErrorKeepsCode(t *testing.T) {
	// A token endpoint that is down: the call keeps its Unauthenticated
	// code and says why.
	f := newFixture(t, fixtureOptions{})
	f.tokens.SetFault(testserver.FaultOAuthError(503, "temporarily_unavailable", "try later"))
	c := dial(t, f.config())
	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.Error(t, err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	var te *authenticator.TokenError
	require.True(t, errors.As(err, &te))
	assert.Equal(t, "temporarily_unavailable", te.ErrorCode)
	assert.NotContains(t, err.Error(), testSecret)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}
