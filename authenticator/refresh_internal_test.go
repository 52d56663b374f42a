package authenticator

// These tests look inside the authenticator to check that a background
// refresh did NOT start, which no outside observer can tell without
// waiting for something that should not happen.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// newInternalPair returns a token server issuing tokens of lifetime and an
// authenticator for it, on one fake clock, with a first token in place.
func newInternalPair(t *testing.T, lifetime time.Duration, opts ...Option) (*testserver.Clock, *testserver.TokenServer, *Keeper) {
	t.Helper()
	clk := testserver.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ts, err := testserver.NewTokenServer(
		testserver.WithClient("id", "secret"),
		testserver.WithLifetime(lifetime),
		testserver.WithTokenClock(clk.Now),
	)
	require.NoError(t, err)
	t.Cleanup(ts.Close)
	store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: ts.TokenURL()})
	a, err := NewClientCredentialsAuthenticator("endpoint", "id", "secret", store, append([]Option{WithClock(clk.Now)}, opts...)...)
	require.NoError(t, err)
	require.NoError(t, a.RefreshCredentials(context.Background()))
	return clk, ts, a
}

// backgroundStarted reports whether a background refresh of c has
// started (and not failed).
func backgroundStarted(c *held) bool { return c.nextBackground.Load() == math.MaxInt64 }

func TestBackgroundRefreshStartsOnlyInsideMargin(t *testing.T) {
	tests := []struct {
		name      string
		margin    time.Duration
		at        time.Duration // into a 100 s lifetime
		wantStart bool
	}{
		{name: "default margin, before", at: 85 * time.Second},
		{name: "default margin, inside", at: 92 * time.Second, wantStart: true},
		{name: "30 s, before", margin: 30 * time.Second, at: 65 * time.Second},
		{name: "30 s, inside", margin: 30 * time.Second, at: 75 * time.Second, wantStart: true},
		{name: "80 s capped at 50 s, before", margin: 80 * time.Second, at: 45 * time.Second},
		{name: "80 s capped at 50 s, inside", margin: 80 * time.Second, at: 55 * time.Second, wantStart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk, ts, a := newInternalPair(t, 100*time.Second, WithRefreshMargin(tt.margin))
			c := a.current.Load()

			clk.Advance(tt.at)
			_, v, ok := credOK(a.Credential(context.Background()))
			require.True(t, ok)
			assert.Equal(t, c.value, v, "the still-valid token is returned")
			require.Equal(t, tt.wantStart, backgroundStarted(c))
			if !tt.wantStart {
				assert.Zero(t, c.nextBackground.Load())
				assert.Same(t, c, a.current.Load())
				assert.EqualValues(t, 1, ts.Requests())
				return
			}
			require.Eventually(t, func() bool { return a.current.Load() != c }, 10*time.Second, 5*time.Millisecond)
			assert.EqualValues(t, 2, ts.Issued())
		})
	}
}

func TestNoExpiryNoBackgroundRefresh(t *testing.T) {
	clk, ts, a := newInternalPair(t, 0)
	c := a.current.Load()
	assert.True(t, c.expiry.IsZero())
	assert.True(t, c.refreshAt.IsZero())

	clk.Advance(10 * 365 * 24 * time.Hour)
	_, v, _ := credOK(a.Credential(context.Background()))
	assert.Equal(t, c.value, v)
	assert.False(t, backgroundStarted(c))
	assert.EqualValues(t, 1, ts.Requests())
}

func TestLifetimeIsExpiresIn(t *testing.T) {
	clk, _, a := newInternalPair(t, 100*time.Second)
	c := a.current.Load()
	// The fake clock has not moved since the request, so the lifetime is
	// exactly expires_in, whatever the wall clock did meanwhile.
	assert.Equal(t, clk.Now().Add(100*time.Second), c.expiry)
	assert.Equal(t, c.expiry.Add(-maxDefaultMargin), c.refreshAt)
}

func TestFailedBackgroundRefreshPausesBeforeRetry(t *testing.T) {
	clk, ts, a := newInternalPair(t, 100*time.Second)
	c := a.current.Load()
	// Busy for the request and its two transient retries.
	ts.SetFault(testserver.FaultTimes(1+transientRetries, testserver.FaultStatus(http.StatusServiceUnavailable, "text/plain", "busy")))

	clk.Advance(95 * time.Second)
	_, _, _ = a.Credential(context.Background())
	require.Eventually(t, func() bool { return !backgroundStarted(c) }, 10*time.Second, 5*time.Millisecond,
		"the failed background refresh sets its pause")
	pauseUntil := c.nextBackground.Load()
	assert.Equal(t, clk.Now().Add(a.opts.retryPause).UnixNano(), pauseUntil)
	assert.EqualValues(t, 2+transientRetries, ts.Requests())
	assert.Same(t, c, a.current.Load(), "the old token stays")

	// Within the pause, callers do not start another one.
	_, v, _ := credOK(a.Credential(context.Background()))
	assert.Equal(t, c.value, v)
	assert.Equal(t, pauseUntil, c.nextBackground.Load())

	// After it, one does.
	clk.Advance(a.opts.retryPause)
	_, _, _ = a.Credential(context.Background())
	require.Eventually(t, func() bool { return a.current.Load() != c }, 10*time.Second, 5*time.Millisecond)
	assert.EqualValues(t, 3+transientRetries, ts.Requests())
	assert.EqualValues(t, 2, ts.Issued())
}

// joinedCtx calls joined the first time Done is called, which refresh does
// once the caller waits on a flight.
type joinedCtx struct {
	context.Context
	once   sync.Once
	joined chan struct{}
}

func newJoinedCtx() *joinedCtx {
	return &joinedCtx{Context: context.Background(), joined: make(chan struct{})}
}

func (c *joinedCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.joined) })
	return c.Context.Done()
}

func TestJoiningASkippedFlight(t *testing.T) {
	tests := []struct {
		name        string
		call        func(a *Keeper, ctx context.Context, current, older *held) error
		wantRequest bool
	}{
		{
			name: "RefreshCredentials still gets a new token",
			call: func(a *Keeper, ctx context.Context, _, _ *held) error {
				return a.RefreshCredentials(ctx)
			},
			wantRequest: true,
		},
		{
			name: "RefreshRejected of the current token still gets a new token",
			call: func(a *Keeper, ctx context.Context, current, _ *held) error {
				return a.Rejected(ctx, current.value)
			},
			wantRequest: true,
		},
		{
			name: "a refresh for a token already replaced makes no request",
			call: func(a *Keeper, ctx context.Context, _, older *held) error {
				_, err := a.refresh(ctx, older, causeExpired)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts, a := newInternalPair(t, 0)
			older := a.current.Load()
			require.NoError(t, a.RefreshCredentials(context.Background()))
			current := a.current.Load()
			ts.ResetCounters()

			// A straggler's flight for the older token is in progress; it
			// will end without a request.
			release := make(chan struct{})
			started, straggler := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(straggler)
				_, _ = a.group.Do(context.Background(), nil, time.Minute, func(context.Context) (*held, error) {
					close(started)
					<-release
					return nil, nil // skipped
				})
			}()
			<-started

			ctx := newJoinedCtx()
			done := make(chan error, 1)
			go func() { done <- tt.call(a, ctx, current, older) }()
			select {
			case <-ctx.joined:
			case <-time.After(10 * time.Second):
				t.Fatal("the caller did not join the flight")
			}
			close(release)
			<-straggler

			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("the caller did not return")
			}
			if tt.wantRequest {
				assert.EqualValues(t, 1, ts.Issued())
				assert.NotSame(t, current, a.current.Load())
				return
			}
			assert.Zero(t, ts.Requests())
			assert.Same(t, current, a.current.Load())
		})
	}
}

// loginFlow is a flow that asks a person: each login gives a token of a
// minute. A background refresh (which may not log in) waits for release
// first, so that a caller can join it; with refused, it ends because the
// server refused the saved refresh token (400 invalid_grant), as one past
// its lifetime is.
type loginFlow struct {
	refused           bool
	logins            atomic.Int32
	background        chan struct{} // closed when a background refresh starts
	release           chan struct{}
	backgroundStarted sync.Once
}

func (f *loginFlow) Token(ctx context.Context, _ *configstore.ClientConfig, _ *oauth2.Token) (*oauth2.Token, error) {
	if noLogin(ctx) && f.logins.Load() > 0 {
		// After the first login, the first request that may not log in
		// is the background refresh; later ones pass once it is released.
		f.backgroundStarted.Do(func() { close(f.background) })
		<-f.release
	}
	var why error
	if f.refused && noLogin(ctx) && f.logins.Load() > 0 {
		why = &TokenError{TokenURL: "https://idp.example/token", StatusCode: 400, ErrorCode: "invalid_grant"}
	}
	return loginOrWait(ctx, why, silentPrompter{}, func() (*oauth2.Token, error) {
		n := f.logins.Add(1)
		return &oauth2.Token{AccessToken: fmt.Sprintf("login-%d", n), ExpiresIn: 60}, nil
	})
}

func (f *loginFlow) flowTimeout() time.Duration { return time.Minute }

// silentPrompter shows nothing.
type silentPrompter struct{}

func (silentPrompter) Browse(context.Context, string)                         {}
func (silentPrompter) DeviceCode(context.Context, *oauth2.DeviceAuthResponse) {}
func (silentPrompter) Relogin(context.Context)                                {}
func (silentPrompter) LoggedIn(context.Context)                               {}
func (silentPrompter) CallbackPage(io.Writer, error)                          {}

// TestACallAfterExpiryThatJoinsABackgroundRefreshLogsIn: a call that needs
// a token after the expiry and joins a background refresh still in flight
// (which may not log in) logs in itself, rather than going out with the
// expired token; also when that refresh ended because the refresh token
// was refused (a 4xx, which must not start the refusal pause).
func TestACallAfterExpiryThatJoinsABackgroundRefreshLogsIn(t *testing.T) {
	for _, refused := range []bool{false, true} {
		t.Run(fmt.Sprintf("refused=%v", refused), func(t *testing.T) {
			clk := testserver.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			f := &loginFlow{refused: refused, background: make(chan struct{}), release: make(chan struct{})}
			store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "https://idp.example/token"})
			k, err := New("endpoint", store, f, WithClock(clk.Now))
			require.NoError(t, err)
			t.Cleanup(func() { _ = k.Close() })
			_, first, ok := credOK(k.Credential(context.Background()))
			require.True(t, ok)

			clk.Advance(55 * time.Second) // in the refresh margin
			_, v, ok := credOK(k.Credential(context.Background()))
			require.True(t, ok)
			require.Equal(t, first, v)
			within(t, f.background, "the background refresh")

			clk.Advance(10 * time.Second) // expired
			ctx := newJoinedCtx()
			type result struct {
				value string
				err   error
			}
			done := make(chan result, 1)
			go func() {
				_, v, err := k.Credential(ctx)
				done <- result{v, err}
			}()
			within(t, ctx.joined, "the caller joining the background refresh")
			close(f.release)
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the call did not return")
			}
			require.NoError(t, r.err)
			assert.Equal(t, "Bearer login-2", r.value, "the call logged in")
			assert.EqualValues(t, 2, f.logins.Load())
		})
	}
}

// within waits for ch to be closed or to deliver.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// credOK is Credential as the (key, value, ok) of a test that only asks
// whether a credential is at hand.
func credOK(key, value string, err error) (string, string, bool) { return key, value, err == nil }
