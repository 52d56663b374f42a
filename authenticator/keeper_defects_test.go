package authenticator_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/metadata"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
)

// cachedKeeper is a client-credentials Keeper on clk whose cache holds tok
// (under whatever key it asks), with ts as its token server.
func cachedKeeper(t *testing.T, clk *testserver.Clock, ts *testserver.TokenServer, tok oauth2.Token) *authenticator.Keeper {
	t.Helper()
	cache := &oneEntryCache{mapCache{m: map[string]oauth2.Token{"": tok}}}
	k := newAuth(t, staticFor(ts), authenticator.WithCache(cache), authenticator.WithClock(clk.Now), authenticator.WithLogger(discardLogger()))
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// A cached token that has expired is not used, whatever its expires_in
// says: expires_in counted from a moment long past.
func TestCachedExpiredTokenIsNotRevivedByExpiresIn(t *testing.T) {
	clk := newFakeClock()
	ts := newDefaultTokenServer(t, testserver.WithLifetime(time.Hour), testserver.WithTokenClock(clk.Now))
	k := cachedKeeper(t, clk, ts, oauth2.Token{
		AccessToken: "cached-and-expired",
		TokenType:   "Bearer",
		Expiry:      clk.Now().Add(-time.Minute),
		ExpiresIn:   3600,
	})

	tok, err := k.Token(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, "cached-and-expired", tok.AccessToken, "the expired cached token was served")
	assert.EqualValues(t, 1, ts.Requests(), "a token request replaces the expired cached token")
	assert.EqualValues(t, 0, k.Stats().CacheHits)
}

// A cached token that is still valid, but for less than its expires_in
// says, is used until its Expiry, not for expires_in from now.
func TestCachedTokenExpiresAtItsExpiryNotExpiresInFromNow(t *testing.T) {
	clk := newFakeClock()
	ts := newDefaultTokenServer(t, testserver.WithLifetime(time.Hour), testserver.WithTokenClock(clk.Now))
	expiry := clk.Now().Add(2 * time.Minute)
	k := cachedKeeper(t, clk, ts, oauth2.Token{
		AccessToken: "cached",
		TokenType:   "Bearer",
		Expiry:      expiry,
		ExpiresIn:   3600,
	})

	tok, err := k.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, "cached", tok.AccessToken, "the valid cached token is used")
	assert.True(t, tok.Expiry.Equal(expiry), "the token keeps its Expiry: got %v, want %v", tok.Expiry, expiry)
	assert.EqualValues(t, 0, ts.Requests())
	assert.EqualValues(t, 1, k.Stats().CacheHits)

	clk.Advance(3 * time.Minute) // past its Expiry, far within expires_in
	tok, err = k.Token(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, "cached", tok.AccessToken, "the cached token was served after its Expiry")
	assert.EqualValues(t, 1, ts.Requests())
}

// A fresh answer still counts its lifetime from expires_in, also one so
// long that x/oauth2's Expiry overflows (form-encoded): it means no expiry,
// not one a fraction of a second away; and a token of unknown lifetime is
// not handed to the next process from the cache.
func TestHugeExpiresInSurvivesTheCache(t *testing.T) {
	ts := newDefaultTokenServer(t)
	ts.SetFault(testserver.FaultOnce(testserver.FaultStatus(http.StatusOK, "application/x-www-form-urlencoded",
		"access_token=tok&token_type=bearer&expires_in=18446744074")))
	cache := &mapCache{m: map[string]oauth2.Token{}}
	newKeeper := func() *authenticator.Keeper {
		k := newAuth(t, staticFor(ts), authenticator.WithCache(cache), authenticator.WithLogger(discardLogger()))
		t.Cleanup(func() { _ = k.Close() })
		return k
	}

	first := newKeeper()
	tok, err := first.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, "tok", tok.AccessToken)
	assert.True(t, tok.Expiry.IsZero() || tok.Expiry.After(time.Now().Add(time.Hour)),
		"a lifetime too long to hold means no expiry, not one a fraction of a second away: %v", tok.Expiry)
	again, err := first.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "tok", again.AccessToken)
	assert.EqualValues(t, 1, ts.Requests())

	// A token of unknown lifetime is not taken from the cache: a process
	// that only reads it (grpcauth token) would never see it rejected.
	second := newKeeper()
	_, err = second.Token(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 2, ts.Requests(), "a request of its own")
	assert.Zero(t, second.Stats().CacheHits)
}

// Token's first call is a first use, not an expiry.
func TestTokenFirstUseCountsAsFirstUse(t *testing.T) {
	clk, ts, a := newClockedPair(t, 100*time.Second)
	_, err := a.Token(t.Context())
	require.NoError(t, err)
	s := a.Stats()
	assert.EqualValues(t, 1, s.FirstUse, "stats: %+v", s)
	assert.EqualValues(t, 0, s.Expired, "stats: %+v", s)

	// An expired token still counts as Expired.
	clk.Advance(101 * time.Second)
	_, err = a.Token(t.Context())
	require.NoError(t, err)
	s = a.Stats()
	assert.EqualValues(t, 1, s.FirstUse, "stats: %+v", s)
	assert.EqualValues(t, 1, s.Expired, "stats: %+v", s)
	assert.EqualValues(t, 2, ts.Requests())
}

// errFlow is a Flow that fails with err.
type errFlow struct{ err error }

func (f errFlow) Token(context.Context, *configstore.ClientConfig, *oauth2.Token) (*oauth2.Token, error) {
	return nil, f.err
}

// nilFlow is a Flow that answers no token and no error.
type nilFlow struct{}

func (nilFlow) Token(context.Context, *configstore.ClientConfig, *oauth2.Token) (*oauth2.Token, error) {
	return nil, nil
}

// requirePrefixedOnce fails unless err says "authenticator: " exactly
// once, at its start.
func requirePrefixedOnce(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	msg := err.Error()
	assert.True(t, strings.HasPrefix(msg, "authenticator: "), "no package prefix: %q", msg)
	assert.Equal(t, 1, strings.Count(msg, "authenticator: "), "the package prefix is repeated: %q", msg)
}

// Every way a Keeper fails names the package once.
func TestKeeperErrorsArePrefixedOnce(t *testing.T) {
	// each runs the Keeper's entry points against one failure.
	each := func(t *testing.T, k *authenticator.Keeper) {
		t.Helper()
		_, err := k.Token(t.Context())
		requirePrefixedOnce(t, err)
		requirePrefixedOnce(t, k.RefreshCredentials(t.Context()))
		requirePrefixedOnce(t, k.Rejected(t.Context(), "Bearer x"))
		_, _, err = k.Credential(t.Context())
		requirePrefixedOnce(t, err)
	}
	newKeeper := func(t *testing.T, store configstore.ClientConfigStore, flow authenticator.Flow) *authenticator.Keeper {
		t.Helper()
		k, err := authenticator.New(testEndpoint, store, flow, authenticator.WithLogger(discardLogger()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = k.Close() })
		return k
	}

	t.Run("closed", func(t *testing.T) {
		ts := newDefaultTokenServer(t)
		k := newAuth(t, staticFor(ts), authenticator.WithLogger(discardLogger()))
		require.NoError(t, k.Close())
		each(t, k)
		_, err := k.Token(t.Context())
		assert.ErrorIs(t, err, authenticator.ErrClosed)
	})
	t.Run("closed during the request", func(t *testing.T) {
		ts := newDefaultTokenServer(t)
		g := newGate()
		t.Cleanup(g.Open)
		ts.SetFault(g.Fault())
		k := newAuth(t, staticFor(ts), authenticator.WithLogger(discardLogger()))
		errs := make(chan error, 1)
		go func() {
			_, err := k.Token(context.Background())
			errs <- err
		}()
		require.Eventually(t, func() bool { return ts.Requests() > 0 }, waitFor, pollAt)
		require.NoError(t, k.Close())
		err := receiveWithin(t, errs, "the Token call")
		requirePrefixedOnce(t, err)
		assert.ErrorIs(t, err, authenticator.ErrClosed)
	})
	t.Run("failing token endpoint", func(t *testing.T) {
		ts := newDefaultTokenServer(t)
		ts.SetFault(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "no such client"))
		each(t, newAuth(t, staticFor(ts), authenticator.WithLogger(discardLogger())))
	})
	t.Run("failing config store", func(t *testing.T) {
		store := newFakeStore(configstore.ClientConfig{})
		store.SetError(errors.New("configstore: GetOAuth2Metadata: down"))
		each(t, newAuth(t, store, authenticator.WithLogger(discardLogger())))
	})
	t.Run("empty client id", func(t *testing.T) {
		_, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, " ", testSecret, configstore.NewStatic(configstore.ClientConfig{}))
		requirePrefixedOnce(t, err)
		_, err = authenticator.ClientCredentials("", authenticator.SecretFromEnv("UNUSED_SECRET_VAR"))
		requirePrefixedOnce(t, err)
	})
	t.Run("device login without a client id", func(t *testing.T) {
		flow, err := authenticator.NewDeviceFlow(authenticator.DeviceConfig{Prompter: &loginui.Terminal{Out: new(promptBuffer)}})
		require.NoError(t, err)
		store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "https://idp.example/token"})
		each(t, newKeeper(t, store, flow))
		_, err = newKeeper(t, store, flow).Token(t.Context())
		assert.ErrorIs(t, err, authenticator.ErrNoClientID)
	})
	t.Run("flow that answers no token", func(t *testing.T) {
		each(t, newKeeper(t, configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "https://idp.example/token"}), nilFlow{}))
	})
	t.Run("flow whose error names the package", func(t *testing.T) {
		sentinel := errors.New("authenticator: the flow failed")
		k := newKeeper(t, configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "https://idp.example/token"}), errFlow{sentinel})
		each(t, k)
		_, err := k.Token(t.Context())
		assert.ErrorIs(t, err, sentinel)
	})
}

// The caller's outgoing gRPC metadata does not ride along on the
// anonymous AuthMetadataService calls the Keeper's first token needs.
func TestKeeperMetadataRPCsCarryNoCallerMetadata(t *testing.T) {
	ts := newDefaultTokenServer(t)
	admin := newAdmin(t, ts)
	k := newAuth(t, newRemote(t, admin), authenticator.WithLogger(discardLogger()))
	t.Cleanup(func() { _ = k.Close() })

	ctx := metadata.NewOutgoingContext(t.Context(), metadata.Pairs(
		"authorization", "Bearer the-callers-own-token",
		"x-tenant", "acme"))
	_, err := k.Token(ctx)
	require.NoError(t, err)
	headers := admin.MetadataRPCHeaders()
	require.NotEmpty(t, headers)
	for _, md := range headers {
		assert.Empty(t, md.Get("authorization"), "metadata: %v", md)
		assert.Empty(t, md.Get("x-tenant"), "metadata: %v", md)
	}
	assert.False(t, admin.MetadataRPCsSawToken())
}

// oneEntryCache is a cache of one entry, whatever the key.
type oneEntryCache struct{ mapCache }

func (c *oneEntryCache) Load(ctx context.Context, _ string) (*oauth2.Token, error) {
	return c.mapCache.Load(ctx, "")
}

func (c *oneEntryCache) Save(ctx context.Context, _ string, tok *oauth2.Token) error {
	return c.mapCache.Save(ctx, "", tok)
}

func (c *oneEntryCache) Delete(ctx context.Context, _ string) error {
	return c.mapCache.Delete(ctx, "")
}

func (c *oneEntryCache) Update(ctx context.Context, _ string, fn func(*oauth2.Token) (*oauth2.Token, error)) error {
	return c.mapCache.Update(ctx, "", fn)
}
