package authenticator_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// failingWrites is a File cache whose Update fails to keep what fn
// returned while failNext is set (a full disk, a read-only file system):
// fn has run, nothing was written, the error comes back.
type failingWrites struct {
	authenticator.TokenCache
	failNext atomic.Bool
}

func (c *failingWrites) Update(ctx context.Context, key string, fn func(*oauth2.Token) (*oauth2.Token, error)) error {
	return c.TokenCache.Update(ctx, key, func(cur *oauth2.Token) (*oauth2.Token, error) {
		next, err := fn(cur)
		if err == nil && next != nil && c.failNext.CompareAndSwap(true, false) {
			return nil, errors.New("write /tokens/x.json: no space left on device")
		}
		return next, err
	})
}

// TestCacheWriteFailureNeverLeadsToARotatedRefreshToken: the Keeper notes
// the refreshed token as the cache's entry (sawCache) before the cache has
// written it. When that write fails, the cache still holds the old token,
// which the next turn takes for another process's newer one, and redeems
// its refresh token, already rotated: the provider sees a reuse and
// revokes the whole login.
func TestCacheWriteFailureNeverLeadsToARotatedRefreshToken(t *testing.T) {
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAccessLifetime(time.Hour), testserver.WithAuthorizeClock(clock.Now))
	cache := &failingWrites{TokenCache: newFileCache(t, t.TempDir())}
	k := newPKCEKeeper(t, fx, cache, authenticator.WithClock(clock.Now))

	_, err := k.Token(t.Context()) // the login; saved
	require.NoError(t, err)
	fx.lastPage(t)

	cache.failNext.Store(true)
	clock.Advance(61 * time.Minute)
	_, err = k.Token(t.Context()) // refresh R1 -> R2; the cache write fails
	require.NoError(t, err)
	require.EqualValues(t, 1, fx.as.RefreshGrants())

	clock.Advance(61 * time.Minute)
	_, _ = k.Token(t.Context()) // should redeem R2, the Keeper's own
	assert.Zero(t, fx.as.RefreshReuses(), "a rotated refresh token was redeemed again")
	assert.EqualValues(t, 1, fx.as.Authorizations(), "no second login")
}
