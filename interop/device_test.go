package interop

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
	"github.com/flyteauth/grpcauth/tokencache"
)

const (
	// deviceScopes are what the admin server advertises; offline_access
	// is what makes the provider issue a refresh token.
	deviceScope = "offline_access"
	// deviceLoginTimeout bounds one device login of a test, approval
	// included; it is a deadline, never something a test measures.
	deviceLoginTimeout = time.Minute
	// deviceTranscriptEnv names a file to write the prompt of the first
	// login to, QR code included: the transcript in the README.
	deviceTranscriptEnv = "DEVICE_TRANSCRIPT"
)

// deviceStack is one test's world for the device flow: the real OpenID
// provider, and an admin server over TLS whose AuthMetadataService
// advertises the provider's token and device authorization endpoints and
// the public client, and whose echo service accepts a token only when the
// provider's introspection says it is active.
type deviceStack struct {
	op    *oidcProvider
	admin *testserver.AdminServer
	conn  *grpc.ClientConn
	store configstore.ClientConfigStore
}

func newDeviceStack(t *testing.T) *deviceStack {
	t.Helper()
	s := &deviceStack{op: startOIDCProvider(t)}
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	s.admin, err = testserver.NewAdminServer(
		testserver.WithTCP(),
		testserver.WithAdminTLS(ca),
		testserver.WithValidator(s.op),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
			Issuer:                      s.op.issuer,
			TokenEndpoint:               s.op.tokenURL,
			DeviceAuthorizationEndpoint: s.op.deviceURL,
			GrantTypesSupported:         []string{testserver.DeviceCodeGrantType, "refresh_token"},
		}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
			ClientId: opClientID,
			Scopes:   []string{deviceScope},
		}),
	)
	require.NoError(t, err)
	t.Cleanup(s.admin.Close)
	s.conn, err = grpc.NewClient(s.admin.Addr(), s.admin.DialOptions()...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.conn.Close() })
	s.store, err = configstore.NewRemote(s.conn)
	require.NoError(t, err)
	return s
}

// config is what the flow is given: the admin server's answer.
func (s *deviceStack) config(t *testing.T) *configstore.ClientConfig {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	cfg, err := s.store.GetClientConfig(ctx)
	require.NoError(t, err)
	return cfg
}

// echo makes one protected echo call carrying tok.
func (s *deviceStack) echo(t *testing.T, tok *oauth2.Token) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	got, err := testserver.NewEchoClient(s.conn).Unary(ctx, "hello", grpc.PerRPCCredentials(bearer(tok.AccessToken)))
	if err == nil {
		assert.Equal(t, "hello", got)
	}
	return err
}

// token runs flow.Token as the Keeper would: with the provider's HTTP
// client in ctx. When decide is not nil, the person answers every prompt
// the flow shows with it.
func (s *deviceStack) token(t *testing.T, flow authenticator.Flow, prompt *promptWatcher, prev *oauth2.Token, decide *bool) (*oauth2.Token, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deviceLoginTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.op.http)
	cfg := s.config(t)
	if decide == nil {
		return flow.Token(ctx, cfg, prev)
	}
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := flow.Token(ctx, cfg, prev)
		done <- result{tok, err}
	}()
	s.op.Decide(t, prompt.NextURL(t), *decide)
	r := <-done
	return r.tok, r.err
}

// bearer attaches a fixed token to a call, over TLS only.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

func newDeviceFlow(t *testing.T, prompt *promptWatcher, qr bool) authenticator.Flow {
	t.Helper()
	f, err := authenticator.NewDeviceFlow(authenticator.DeviceConfig{
		Timeout:  deviceLoginTimeout,
		Prompter: &loginui.Terminal{Out: prompt, QRCode: qr},
	})
	require.NoError(t, err)
	return f
}

func ptr[T any](v T) *T { return &v }

// TestDeviceFlowOIDCProvider runs the device flow against zitadel/oidc's
// OP: login approved by the person on the provider's pages, a protected
// call with the token, the refresh token used once the access token
// expired, a new login once the refresh token is refused, and a denial.
func TestDeviceFlowOIDCProvider(t *testing.T) {
	s := newDeviceStack(t)
	cfg := s.config(t)
	require.Equal(t, s.op.deviceURL, cfg.DeviceAuthorizationEndpoint, "the device endpoint comes from GetOAuth2Metadata")
	require.Equal(t, opClientID, cfg.ClientID, "the client id comes from GetPublicClientConfig")

	prompt := newPromptWatcher()
	flow := newDeviceFlow(t, prompt, true)

	first, err := s.token(t, flow, prompt, nil, ptr(true))
	require.NoError(t, err)
	require.NotEmpty(t, first.AccessToken)
	require.NotEmpty(t, first.RefreshToken, "offline_access gives a refresh token")
	require.NoError(t, s.echo(t, first), "a protected call passes with the token")
	info, err := s.op.Validate(t.Context(), first.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, opClientID, info.ClientID)
	assert.Equal(t, []string{deviceScope}, info.Scopes)

	shown := prompt.String()
	assert.Contains(t, shown, s.op.issuer+"/device?user_code=")
	assert.Contains(t, shown, "█", "the QR code")
	assert.NotContains(t, shown, first.AccessToken)
	if path := os.Getenv(deviceTranscriptEnv); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(shown), 0o644))
	}
	stats := s.op.Stats(t)
	assert.Equal(t, 1, stats.DeviceAuthorizations)
	assert.Equal(t, 1, stats.Approvals)
	assert.GreaterOrEqual(t, stats.DevicePolls, 1)

	t.Run("refresh after expiry", func(t *testing.T) {
		s.op.ExpireAccessTokens(t)
		err := s.echo(t, first)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "the provider no longer accepts the expired token: %v", err)

		before, shownBefore := s.op.Stats(t), prompt.String()
		second, err := s.token(t, flow, prompt, first, nil)
		require.NoError(t, err)
		assert.NotEqual(t, first.AccessToken, second.AccessToken)
		require.NoError(t, s.echo(t, second))
		after := s.op.Stats(t)
		assert.Equal(t, before.Refreshes+1, after.Refreshes, "the refresh token was used")
		assert.Equal(t, before.DeviceAuthorizations, after.DeviceAuthorizations, "no new device login")
		assert.Equal(t, shownBefore, prompt.String(), "nothing shown to the person")
		first = second
	})

	t.Run("refused refresh token asks the person again", func(t *testing.T) {
		s.op.RevokeRefreshTokens(t)
		s.op.ExpireAccessTokens(t)
		before, shownBefore := s.op.Stats(t), len(prompt.String())
		third, err := s.token(t, flow, prompt, first, ptr(true))
		require.NoError(t, err)
		require.NoError(t, s.echo(t, third))
		assert.Equal(t, before.DeviceAuthorizations+1, s.op.Stats(t).DeviceAuthorizations)
		assert.Contains(t, prompt.String()[shownBefore:], "no longer accepted")
	})

	t.Run("denied", func(t *testing.T) {
		tok, err := s.token(t, flow, prompt, nil, ptr(false))
		require.Error(t, err)
		assert.Nil(t, tok)
		var ae *authenticator.AuthorizationError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "access_denied", ae.ErrorCode)
		assert.Contains(t, err.Error(), "refused the login")
	})
}

// TestDeviceFlowKeeperCache runs the flow under the Keeper and the
// interceptors, as a program does: the first "process" logs in once for
// several calls and leaves its token in the cache; a second one, sharing
// only the cache, calls without asking the person, and once the provider
// no longer accepts the token the interceptor's retry makes the Keeper hand
// it to the flow, which uses its refresh token. The cache is
// tokencache.File, one instance per "process" over one directory.
func TestDeviceFlowKeeperCache(t *testing.T) {
	s := newDeviceStack(t)
	cacheDir := t.TempDir()
	endpoint := "dns:///" + s.admin.Addr()

	// process starts what a program has: its own file cache over the
	// shared directory, a Keeper with its own flow and prompt, and a
	// connection whose calls the Keeper authenticates.
	process := func(t *testing.T) (*authenticator.Keeper, *testserver.EchoClient, *promptWatcher) {
		t.Helper()
		prompt := newPromptWatcher()
		cache, err := tokencache.NewFile(tokencache.WithDir(cacheDir))
		require.NoError(t, err)
		k, err := authenticator.New(endpoint, s.store, newDeviceFlow(t, prompt, false),
			authenticator.WithCache(cache), authenticator.WithHTTPClient(s.op.http))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, k.Close()) })
		conn, err := grpc.NewClient(s.admin.Addr(), append(s.admin.DialOptions(),
			grpc.WithChainUnaryInterceptor(interceptor.UnaryClientInterceptor(k)))...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return k, testserver.NewEchoClient(conn), prompt
	}
	call := func(e *testserver.EchoClient) error { return unary(t.Context(), e, "hello") }

	k1, echo1, prompt1 := process(t)
	done := make(chan error, 1)
	go func() { done <- call(echo1) }() // the first call waits for the login
	s.op.Decide(t, prompt1.NextURL(t), true)
	require.NoError(t, <-done)
	for range 3 {
		require.NoError(t, call(echo1))
	}
	assert.Equal(t, 1, s.op.Stats(t).DeviceAuthorizations, "one login for every call")
	assert.Equal(t, int64(1), k1.Stats().TokenRequests)
	key, err := k1.CacheKey(t.Context())
	require.NoError(t, err)
	reader, err := tokencache.NewFile(tokencache.WithDir(cacheDir))
	require.NoError(t, err)
	cached, err := reader.Load(t.Context(), key)
	require.NoError(t, err)
	require.NotNil(t, cached, "the Keeper saved the token")
	require.NotEmpty(t, cached.RefreshToken)

	k2, echo2, prompt2 := process(t)
	require.NoError(t, call(echo2))
	assert.Equal(t, int64(1), k2.Stats().CacheHits, "the second process used the cached token")
	assert.Zero(t, k2.Stats().TokenRequests)

	s.op.ExpireAccessTokens(t)
	before := s.op.Stats(t)
	require.NoError(t, call(echo2), "rejected, refreshed, retried")
	after := s.op.Stats(t)
	assert.Equal(t, before.Refreshes+1, after.Refreshes, "the refresh token was used")
	assert.Equal(t, before.DeviceAuthorizations, after.DeviceAuthorizations, "the person was not asked again")
	assert.Empty(t, prompt2.String())
	refreshed, err := reader.Load(t.Context(), key)
	require.NoError(t, err)
	assert.NotEqual(t, cached.AccessToken, refreshed.AccessToken, "the refreshed token went to the cache")
}
