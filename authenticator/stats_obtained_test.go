package authenticator_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// Stats.Obtained, which the token age gauge reads, is when the token
// arrived: for a login, after the person took their time in the browser,
// not when the login began.
func TestObtainedIsWhenTheLoginEnded(t *testing.T) {
	const took = 90 * time.Second
	clock := testserver.NewClock(time.Now())
	fx := newPKCEFixture(t, testserver.WithAccessLifetime(time.Hour), testserver.WithAuthorizeClock(clock.Now))
	flow := fx.flow(t, fx.withBrowser(func(ctx context.Context, u string) error {
		clock.Advance(took) // the person takes 90 s to log in
		return fx.browser(ctx, u)
	}))
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(*fx.cfg), flow,
		authenticator.WithLogger(discardLogger()), authenticator.WithClock(clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })

	_, err = k.Token(t.Context())
	require.NoError(t, err)
	fx.lastPage(t)
	got := clock.Now() // the token came after the login, at this instant

	st := k.Stats()
	assert.Equal(t, got, st.Obtained, "Obtained is when the token came, not when the login began (age right after the login: %v)", got.Sub(st.Obtained))
}
