package authenticator_test

import (
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// TestNoRefreshTokenIsRedeemedWithoutTheCacheLock: while one Keeper holds
// the cache lock for a slow refresh, another that gives up waiting for the
// lock (its token timeout) does not redeem its own refresh token without
// the lock: it is the one the first Keeper is redeeming, and a provider
// that sees a reuse revokes the whole login.
func TestNoRefreshTokenIsRedeemedWithoutTheCacheLock(t *testing.T) {
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAccessLifetime(time.Hour), testserver.WithAuthorizeClock(clock.Now))
	dir := t.TempDir()

	// A slow token endpoint for the first Keeper: a refresh waits until
	// the test releases it, and says when it arrived.
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	slowCfg := *fx.cfg
	slowCfg.TokenEndpoint = fx.tokenFront(t, func(form url.Values) {
		if form.Get("grant_type") == "refresh_token" {
			arrived <- struct{}{}
			<-release
		}
	}, nil)
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // runs first: a failed test leaves no handler waiting

	a, err := authenticator.New(testEndpoint, configstore.NewStatic(slowCfg), fx.flow(t),
		authenticator.WithCache(newFileCache(t, dir)), authenticator.WithClock(clock.Now),
		authenticator.WithTokenTimeout(5*time.Second), authenticator.WithLogger(discardLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	_, err = a.Token(t.Context()) // the login
	require.NoError(t, err)
	fx.lastPage(t)

	// The second Keeper asks the same token endpoint (the cache keeps a
	// login per token endpoint).
	b, err := authenticator.New(testEndpoint, configstore.NewStatic(slowCfg), fx.flow(t),
		authenticator.WithCache(newFileCache(t, dir)), authenticator.WithClock(clock.Now),
		authenticator.WithTokenTimeout(300*time.Millisecond), authenticator.WithLogger(discardLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	_, err = b.Token(t.Context()) // adopts the login from the cache
	require.NoError(t, err)
	require.EqualValues(t, 1, b.Stats().CacheHits)

	clock.Advance(61 * time.Minute)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = a.Token(t.Context()) })
	receiveWithin(t, arrived, "the first Keeper's refresh, under the lock")
	_, err = b.Token(t.Context()) // its wait for the lock ends at its token timeout
	require.ErrorContains(t, err, "redeemed only under the cache's lock")
	free()
	wg.Wait()

	assert.Zero(t, fx.as.RefreshReuses(), "one refresh token was redeemed by both Keepers")
	assert.EqualValues(t, 1, fx.as.Authorizations(), "no second login")
}
