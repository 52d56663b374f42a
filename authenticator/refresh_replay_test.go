package authenticator_test

import (
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// TestALostRefreshAnswerIsNotSentAgain: the connection
// drops after the provider redeemed (and rotated) the refresh token but
// before its answer arrived. The Keeper takes the EOF for a transient
// failure and sends the same refresh token again: a reuse, and a
// provider that detects reuse revokes the whole login.
func TestALostRefreshAnswerIsNotSentAgain(t *testing.T) {
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAccessLifetime(time.Hour), testserver.WithAuthorizeClock(clock.Now))

	var dropped atomic.Bool
	cfg := *fx.cfg
	cfg.TokenEndpoint = fx.tokenFront(t, nil, func(form url.Values) bool {
		// The provider has redeemed it; the answer is lost.
		return form.Get("grant_type") == "refresh_token" && dropped.CompareAndSwap(false, true)
	})

	k, err := authenticator.New(testEndpoint, configstore.NewStatic(cfg), fx.flow(t),
		authenticator.WithClock(clock.Now), authenticator.WithLogger(discardLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	_, err = k.Token(t.Context()) // the login
	require.NoError(t, err)
	fx.lastPage(t)

	clock.Advance(61 * time.Minute)
	_, _ = k.Token(t.Context())
	require.True(t, dropped.Load())
	assert.Zero(t, fx.as.RefreshReuses(), "the refresh token was sent again after the provider had redeemed it")
}
