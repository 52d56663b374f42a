package authenticator_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/tokencache"
)

// newPKCEKeeper is a Keeper running fx's browser login with cache.
func newPKCEKeeper(t *testing.T, fx *pkceFixture, cache authenticator.TokenCache, opts ...authenticator.Option) *authenticator.Keeper {
	t.Helper()
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(*fx.cfg), fx.flow(t),
		append([]authenticator.Option{authenticator.WithCache(cache), authenticator.WithLogger(discardLogger())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func newFileCache(t *testing.T, dir string) *tokencache.File {
	t.Helper()
	c, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	return c
}

// TestPKCECacheHitAcrossKeepers: the second Keeper (a second process would
// be the same) takes the first one's login from the cache and makes no
// request at all.
func TestPKCECacheHitAcrossKeepers(t *testing.T) {
	fx := newPKCEFixture(t)
	dir := filepath.Join(t.TempDir(), "tokens")

	first := newPKCEKeeper(t, fx, newFileCache(t, dir))
	tok1, err := first.Token(t.Context())
	require.NoError(t, err)
	fx.lastPage(t)
	require.NoError(t, first.Close())
	requests := fx.as.TokenRequests()
	require.Equal(t, int64(1), fx.as.Authorizations())

	second := newPKCEKeeper(t, fx, newFileCache(t, dir))
	tok2, err := second.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tok1.AccessToken, tok2.AccessToken)
	assert.Equal(t, requests, fx.as.TokenRequests(), "no token request")
	assert.Equal(t, int64(1), fx.as.Authorizations(), "no browser")
	assert.Equal(t, int64(1), fx.opened.Load())
	assert.Equal(t, int64(1), second.Stats().CacheHits)
	_, value, ok := credOK(second.Credential(t.Context()))
	require.True(t, ok)
	_, err = fx.as.Validate(t.Context(), accessToken(t, value))
	require.NoError(t, err)
}

// TestPKCEExpiredCacheUsesTheRefreshToken: a cached token that has expired
// hands its refresh token to the flow: a refresh grant, no browser, and the
// new token goes back to the cache.
func TestPKCEExpiredCacheUsesTheRefreshToken(t *testing.T) {
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAccessLifetime(time.Hour), testserver.WithAuthorizeClock(clock.Now))
	dir := t.TempDir()
	cache := newFileCache(t, dir)

	first := newPKCEKeeper(t, fx, cache, authenticator.WithClock(clock.Now))
	tok1, err := first.Token(t.Context())
	require.NoError(t, err)
	fx.lastPage(t)
	key, err := first.CacheKey(t.Context())
	require.NoError(t, err)
	require.NoError(t, first.Close())
	before, err := cache.Load(t.Context(), key)
	require.NoError(t, err)
	require.NotEmpty(t, before.RefreshToken)
	assert.Empty(t, tok1.RefreshToken, "the Keeper keeps the refresh token to itself")

	clock.Advance(2 * time.Hour)
	second := newPKCEKeeper(t, fx, newFileCache(t, dir), authenticator.WithClock(clock.Now))
	tok2, err := second.Token(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, tok1.AccessToken, tok2.AccessToken)
	assert.Equal(t, int64(1), fx.as.RefreshGrants())
	assert.Equal(t, int64(1), fx.as.Authorizations(), "no second browser login")
	assert.Equal(t, int64(1), fx.opened.Load())

	saved, err := cache.Load(t.Context(), key)
	require.NoError(t, err)
	assert.Equal(t, tok2.AccessToken, saved.AccessToken, "the refreshed token is cached")
	assert.NotEmpty(t, saved.RefreshToken)
	assert.NotEqual(t, before.RefreshToken, saved.RefreshToken, "with the rotated refresh token")
}

// TestPKCECorruptCacheMeansLogin: a cache file that cannot be read is
// ignored; the Keeper logs in and replaces it.
func TestPKCECorruptCacheMeansLogin(t *testing.T) {
	fx := newPKCEFixture(t)
	cache := newFileCache(t, t.TempDir())
	k := newPKCEKeeper(t, fx, cache)
	key, err := k.CacheKey(t.Context())
	require.NoError(t, err)
	require.NoError(t, writeFile(cache.Path(key), "{not json"))

	tok, err := k.Token(t.Context())
	require.NoError(t, err)
	fx.lastPage(t)
	assert.Equal(t, int64(1), fx.as.Authorizations())
	saved, err := cache.Load(t.Context(), key)
	require.NoError(t, err)
	require.NotNil(t, saved)
	assert.Equal(t, tok.AccessToken, saved.AccessToken)
}

// TestPKCEKeeperGivesTheLoginItsTimeout: the Keeper bounds the flow by
// the login timeout, not by its (shorter) token timeout.
func TestPKCEKeeperGivesTheLoginItsTimeout(t *testing.T) {
	fx := newPKCEFixture(t)
	var deadline time.Duration
	flow := fx.flow(t, withLoginTimeout(time.Hour), fx.withBrowser(func(ctx context.Context, u string) error {
		if d, ok := ctx.Deadline(); ok {
			deadline = time.Until(d)
		}
		return fx.browser(ctx, u)
	}))
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(*fx.cfg), flow,
		authenticator.WithTokenTimeout(time.Second), authenticator.WithLogger(discardLogger()))
	require.NoError(t, err)
	defer k.Close()
	_, err = k.Token(t.Context())
	require.NoError(t, err)
	fx.lastPage(t)
	assert.Greater(t, deadline, time.Minute, "the login has the login timeout")
}

// TestPKCEBackgroundRefreshNeverOpensABrowser: when the refresh token is
// refused in the refresh margin, the still-valid token is used and no
// browser opens (a background refresh has nobody to log in, and the
// failure used to reopen one every second); the login waits for the call
// that needs a token after the expiry.
func TestPKCEBackgroundRefreshNeverOpensABrowser(t *testing.T) {
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAccessLifetime(5*time.Minute), testserver.WithAuthorizeClock(clock.Now))
	k := newPKCEKeeper(t, fx, nil, authenticator.WithClock(clock.Now))
	_, first, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	fx.lastPage(t)
	require.Equal(t, int64(1), fx.opened.Load())
	fx.as.RevokeRefreshTokens()

	// In the margin (the last 10 s), for 9 s of calls.
	clock.Advance(5*time.Minute - 9*time.Second)
	for i := range 9 {
		_, v, ok := credOK(k.Credential(t.Context()))
		require.True(t, ok)
		if i == 0 {
			assert.Equal(t, first, v, "the valid token is used")
			// The background refresh ends: refused, or with a login.
			require.Eventually(t, func() bool { return k.Stats().Failures+fx.opened.Load() > 1 }, 5*time.Second, time.Millisecond)
		}
		clock.Advance(time.Second)
	}
	assert.Equal(t, int64(1), fx.opened.Load(), "no browser from a background refresh")
	assert.LessOrEqual(t, k.Stats().Failures, int64(1), "a refused refresh token is not asked again before the expiry")

	// Expired: the call that needs a token gets the one login.
	clock.Advance(2 * time.Second)
	_, v, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	fx.lastPage(t)
	assert.NotEqual(t, first, v)
	assert.Equal(t, int64(2), fx.opened.Load())
}

// TestPKCEFailedLoginPausesLogins: after the expiry, a call whose login is
// declined fails; the server's rejection of the expired token it still
// carried opens no second browser, nor do the calls that follow within the
// login pause. After the pause, a call that needs a token logs in again.
func TestPKCEFailedLoginPausesLogins(t *testing.T) {
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAccessLifetime(time.Minute), testserver.WithAuthorizeClock(clock.Now))
	k := newPKCEKeeper(t, fx, nil, authenticator.WithClock(clock.Now))
	_, first, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	fx.lastPage(t)
	fx.as.RevokeRefreshTokens()
	clock.Advance(2 * time.Minute)                        // expired; no call in the margin
	fx.callbackTo(url.Values{"error": {"access_denied"}}) // the person declines
	drained := make(chan struct{})
	stop := make(chan struct{})
	go func() { // the browser never waits for the test to look
		defer close(drained)
		for {
			select {
			case <-fx.pages:
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-drained }()

	for range 10 { // ten calls, each sent with the expired token and rejected
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, v, _ := credOK(k.Credential(ctx))
		assert.Equal(t, first, v, "no new token: the expired one goes out")
		err := k.Rejected(ctx, v)
		require.Error(t, err)
		assert.ErrorContains(t, err, "access_denied")
		clock.Advance(time.Second)
	}
	assert.Equal(t, int64(2), fx.opened.Load(), "one declined login for ten calls")

	clock.Advance(time.Minute)
	fx.navigate = func(u string) string { return u }
	_, v, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	assert.NotEqual(t, first, v)
	assert.Equal(t, int64(3), fx.opened.Load(), "after the pause, the next call that needs a token logs in")
}

// TestPKCEDeclinedFirstLoginPausesLogins: the same before the first token:
// a declined login, then calls that go out without a token and are
// rejected, open one browser in all within the pause.
func TestPKCEDeclinedFirstLoginPausesLogins(t *testing.T) {
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAuthorizeClock(clock.Now))
	fx.callbackTo(url.Values{"error": {"access_denied"}})
	k := newPKCEKeeper(t, fx, nil, authenticator.WithClock(clock.Now))
	for range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, _, err := k.Credential(ctx)
		require.Error(t, err)
		assert.Error(t, k.Rejected(ctx, ""), "the call that went out without a token is rejected")
		clock.Advance(2 * time.Second) // past the 1 s retry pause, within the login pause
		for len(fx.pages) > 0 {
			<-fx.pages
		}
	}
	assert.Equal(t, int64(1), fx.opened.Load(), "one declined login for five calls")
}

// deadlineCache is a TokenCache that records the deadline each call had
// left, and waits for it to end, as a cache on a hung file system would.
type deadlineCache struct {
	mu   sync.Mutex // guards left
	left []time.Duration
}

func (c *deadlineCache) wait(ctx context.Context) error {
	d, ok := ctx.Deadline()
	c.mu.Lock()
	if ok {
		c.left = append(c.left, time.Until(d))
	} else {
		c.left = append(c.left, -1)
	}
	c.mu.Unlock()
	if !ok || time.Until(d) > 10*time.Second {
		return nil // the test fails on the deadline; no need to wait it out
	}
	<-ctx.Done()
	return ctx.Err()
}

func (c *deadlineCache) Load(ctx context.Context, _ string) (*oauth2.Token, error) {
	return nil, c.wait(ctx)
}
func (c *deadlineCache) Save(ctx context.Context, _ string, _ *oauth2.Token) error {
	return c.wait(ctx)
}
func (c *deadlineCache) Delete(context.Context, string) error { return nil }
func (c *deadlineCache) Update(ctx context.Context, _ string, _ func(*oauth2.Token) (*oauth2.Token, error)) error {
	return c.wait(ctx) // a lock that is never granted
}

// TestPKCECacheIOHasTheTokenTimeout: a cache that hangs costs at most the
// token timeout per read or write, even around a login with an hour's
// timeout; the login itself goes on.
func TestPKCECacheIOHasTheTokenTimeout(t *testing.T) {
	fx := newPKCEFixture(t)
	cache := new(deadlineCache)
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(*fx.cfg), fx.flow(t, withLoginTimeout(time.Hour)),
		authenticator.WithCache(cache), authenticator.WithTokenTimeout(200*time.Millisecond), authenticator.WithLogger(discardLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	_, err = k.Token(t.Context())
	require.NoError(t, err)
	fx.lastPage(t)
	cache.mu.Lock()
	defer cache.mu.Unlock()
	require.Len(t, cache.left, 3, "the look under the lock, one more read before the login, one write")
	for _, left := range cache.left {
		assert.Positive(t, left, "the cache call had a deadline")
		assert.LessOrEqual(t, left, 200*time.Millisecond, "the token timeout, not the login's")
	}
}

// TestPKCEKeeperTakesANewerLoginFromTheCache: a running service whose
// login died picks up the login another process (grpcauth login) saved,
// without a restart and without asking anyone.
func TestPKCEKeeperTakesANewerLoginFromTheCache(t *testing.T) {
	fx := newPKCEFixture(t)
	cache := newFileCache(t, t.TempDir())
	k := newPKCEKeeper(t, fx, cache)
	_, first, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	fx.lastPage(t)

	// Another process logs in afresh and saves its login.
	tok, err := fx.flow(t).Token(t.Context(), fx.cfg, nil)
	require.NoError(t, err)
	fx.lastPage(t)
	key, err := k.CacheKey(t.Context())
	require.NoError(t, err)
	require.NoError(t, cache.Save(t.Context(), key, tok))
	fx.as.RevokeRefreshTokens()

	require.NoError(t, k.Rejected(t.Context(), first))
	_, v, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	assert.Equal(t, "Bearer "+tok.AccessToken, v, "the other process's login")
	assert.EqualValues(t, 2, fx.opened.Load(), "no login of its own")
	assert.Zero(t, fx.as.RefreshGrants())
}

// TestPKCEDeadRefreshTokenLeavesTheCache: a refresh token FlyteAdmin's
// authorization server refuses with HTTP 500 server_error (past its
// lifetime) leaves the cache, so no other process redeems it again, and
// the call that needs a token gets one new login.
func TestPKCEDeadRefreshTokenLeavesTheCache(t *testing.T) {
	fx := newPKCEFixture(t)
	cache := newFileCache(t, t.TempDir())
	k := newPKCEKeeper(t, fx, cache)
	key, err := k.CacheKey(t.Context())
	require.NoError(t, err)
	_, err = k.Token(t.Context())
	require.NoError(t, err)
	fx.lastPage(t)
	dead, err := cache.Load(t.Context(), key)
	require.NoError(t, err)

	fx.as.SetTokenFault(testserver.FaultOnce(testserver.FaultOAuthError(http.StatusInternalServerError, "server_error",
		"The authorization server encountered an unexpected condition that prevented it from fulfilling the request.")))
	require.NoError(t, k.RefreshCredentials(t.Context()))
	fx.lastPage(t)
	assert.EqualValues(t, 2, fx.opened.Load(), "one new login")
	assert.Equal(t, 1, strings.Count(fx.out.String(), "Your saved login is no longer accepted; log in again."))
	saved, err := cache.Load(t.Context(), key)
	require.NoError(t, err)
	require.NotNil(t, saved)
	assert.NotEqual(t, dead.RefreshToken, saved.RefreshToken, "the cache holds the new login, not the dead one")

	// Another process starting now redeems nothing dead.
	other := newPKCEKeeper(t, fx, cache)
	_, err = other.Token(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 2, fx.opened.Load())
	assert.Zero(t, fx.as.RefreshGrants())
}
