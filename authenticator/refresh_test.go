package authenticator_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// fetchNow calls FetchGRPCCallAuthMetadata and fails the test if it does
// not return within waitFor (it must not wait for a token request held by
// the server).
func fetchNow(t *testing.T, a authenticator.Authenticator) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		_, v, _ := credOK(a.Credential(context.Background()))
		ch <- v
	}()
	return receiveWithin(t, ch, "FetchGRPCCallAuthMetadata")
}

// valueNow is FetchGRPCCallAuthMetadata's value, for polling conditions.
func valueNow(a authenticator.Authenticator) string {
	_, v, _ := credOK(a.Credential(context.Background()))
	return v
}

// newClockedPair returns a token server issuing tokens of the given
// lifetime and an authenticator for it, both on one fake clock.
func newClockedPair(t *testing.T, lifetime time.Duration, opts ...authenticator.Option) (*testserver.Clock, *testserver.TokenServer, *authenticator.Keeper) {
	t.Helper()
	clk := newFakeClock()
	ts := newDefaultTokenServer(t, testserver.WithLifetime(lifetime), testserver.WithTokenClock(clk.Now))
	a := newAuth(t, staticFor(ts), append([]authenticator.Option{authenticator.WithClock(clk.Now)}, opts...)...)
	return clk, ts, a
}

func TestProactiveRefreshAndExpiry(t *testing.T) {
	clk, ts, a := newClockedPair(t, 100*time.Second)
	require.NoError(t, a.RefreshCredentials(context.Background()))
	v1 := fetchNow(t, a)

	// Before the margin (a fifth of 100 s, capped at 10 s): no request.
	clk.Advance(80 * time.Second)
	assert.Equal(t, v1, fetchNow(t, a))
	assert.EqualValues(t, 1, ts.Requests())

	// Inside the margin: the old value comes back at once, even while the
	// background request is held, and only one request starts.
	g := newGate()
	ts.SetFault(g.Fault())
	clk.Advance(15 * time.Second)
	for range 20 {
		require.Equal(t, v1, fetchNow(t, a))
	}
	require.Eventually(t, func() bool { return ts.Requests() == 2 }, waitFor, pollAt)
	g.Open()
	require.Eventually(t, func() bool { return valueNow(a) != v1 }, waitFor, pollAt)
	v2 := fetchNow(t, a)
	assert.EqualValues(t, 2, ts.Issued(), "one background request")
	assert.EqualValues(t, 1, a.Stats().Proactive)
	_, err := ts.Validate(context.Background(), accessToken(t, v2))
	require.NoError(t, err)

	// Past the expiry of v2 (issued at 95 s, valid until 195 s): the caller
	// waits for a new token.
	clk.Advance(101 * time.Second)
	v3 := fetchNow(t, a)
	assert.NotEqual(t, v2, v3)
	assert.EqualValues(t, 3, ts.Issued())
	assert.EqualValues(t, 1, a.Stats().Expired)
	_, err = ts.Validate(context.Background(), accessToken(t, v3))
	require.NoError(t, err, "the new token is valid by the server's clock")

	// Without expires_in the token is used until it is rejected.
	ts.SetLifetime(0)
	require.NoError(t, a.RefreshCredentials(context.Background()))
	v4 := fetchNow(t, a)
	requests := ts.Requests()
	clk.Advance(1000 * time.Hour)
	assert.Equal(t, v4, fetchNow(t, a))
	assert.Equal(t, requests, ts.Requests())
}

func TestRefreshMarginHonoured(t *testing.T) {
	tests := []struct {
		name   string
		margin time.Duration
		at     time.Duration // into a 100 s lifetime
	}{
		{name: "default margin of 10 s", at: 92 * time.Second},
		{name: "30 s", margin: 30 * time.Second, at: 75 * time.Second},
		{name: "capped at half the lifetime", margin: 80 * time.Second, at: 55 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk, ts, a := newClockedPair(t, 100*time.Second, authenticator.WithRefreshMargin(tt.margin))
			require.NoError(t, a.RefreshCredentials(context.Background()))
			v1 := fetchNow(t, a)

			clk.Advance(tt.at)
			assert.Equal(t, v1, fetchNow(t, a), "the still-valid token is returned")
			require.Eventually(t, func() bool { return valueNow(a) != v1 }, waitFor, pollAt, "a background refresh replaces the token")
			assert.EqualValues(t, 2, ts.Issued())
			assert.EqualValues(t, 1, a.Stats().Proactive)
		})
	}
}

func TestExpiresInFormats(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantExpiry  bool // expires 100 s after it was issued
	}{
		{name: "JSON number", contentType: "application/json", body: `{"access_token":"tok","token_type":"Bearer","expires_in":100}`, wantExpiry: true},
		{name: "JSON string", contentType: "application/json", body: `{"access_token":"tok","token_type":"Bearer","expires_in":"100"}`, wantExpiry: true},
		{name: "form-encoded", contentType: "application/x-www-form-urlencoded", body: "access_token=tok&token_type=bearer&expires_in=100", wantExpiry: true},
		{name: "absent", contentType: "application/json", body: `{"access_token":"tok","token_type":"Bearer"}`},
		{name: "zero", contentType: "application/json", body: `{"access_token":"tok","token_type":"Bearer","expires_in":0}`},
		{name: "negative", contentType: "application/json", body: `{"access_token":"tok","token_type":"Bearer","expires_in":-5}`},
		// 2^64 ns, rounded up to whole seconds: a Duration in nanoseconds
		// would wrap around to a fraction of a second.
		{name: "absurdly long", contentType: "application/json", body: `{"access_token":"tok","token_type":"Bearer","expires_in":18446744074}`},
		{name: "absurdly long, form-encoded", contentType: "application/x-www-form-urlencoded", body: "access_token=tok&token_type=bearer&expires_in=18446744074"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk, ts, a := newClockedPair(t, time.Hour)
			ts.SetFault(testserver.FaultOnce(testserver.FaultStatus(http.StatusOK, tt.contentType, tt.body)))
			require.NoError(t, a.RefreshCredentials(context.Background()))
			assert.Equal(t, "Bearer tok", fetchNow(t, a))

			clk.Advance(50 * time.Second)
			assert.Equal(t, "Bearer tok", fetchNow(t, a))
			assert.EqualValues(t, 1, ts.Requests(), "no request half-way through the lifetime")

			clk.Advance(51 * time.Second)
			v := fetchNow(t, a)
			if tt.wantExpiry {
				assert.NotEqual(t, "Bearer tok", v, "an expired token is replaced before use")
				assert.EqualValues(t, 2, ts.Requests())
				return
			}
			assert.Equal(t, "Bearer tok", v)
			assert.EqualValues(t, 1, ts.Requests())
		})
	}
}

func TestFirstFetchGetsAToken(t *testing.T) {
	ts := newDefaultTokenServer(t)
	a := newAuth(t, staticFor(ts))
	key, value, ok := credOK(a.Credential(context.Background()))
	require.True(t, ok, "the first call carries a token")
	assert.Equal(t, "authorization", key)
	_, err := ts.Validate(context.Background(), accessToken(t, value))
	require.NoError(t, err)
	assert.EqualValues(t, 1, ts.Requests())
	assert.EqualValues(t, 1, a.Stats().FirstUse)

	// Later calls reuse it.
	_, again, ok := credOK(a.Credential(context.Background()))
	require.True(t, ok)
	assert.Equal(t, value, again)
	assert.EqualValues(t, 1, ts.Requests())
}

func TestFirstFetchAfterAFailureDoesNotAskAgain(t *testing.T) {
	ts := newDefaultTokenServer(t)
	ts.SetFault(testserver.FaultOAuthError(http.StatusServiceUnavailable, "temporarily_unavailable", "try later"))
	a := newAuth(t, staticFor(ts))
	_, _, ok := credOK(a.Credential(context.Background()))
	require.False(t, ok, "a failed first request leaves the call without a token")
	assert.EqualValues(t, 1, ts.Requests())

	// The call went out without a token and was rejected: the rejection
	// reports the failure just seen instead of a second request.
	err := a.Rejected(context.Background(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "503")
	assert.EqualValues(t, 1, ts.Requests(), "one token request for the whole failing call")

	// The next call asks again, and gets a token once the server is back.
	ts.SetFault(nil)
	_, _, ok = credOK(a.Credential(context.Background()))
	require.True(t, ok)
	assert.EqualValues(t, 2, ts.Requests())
}

// startTogether runs call n times at once, each with a context that
// reports when its caller has joined the flight, and returns their errors.
// It opens g only once every caller has joined, so the flight cannot end
// before the last one arrives.
func startTogether(t *testing.T, n int, g *gate, call func(ctx context.Context) error) []error {
	t.Helper()
	var joined sync.WaitGroup
	joined.Add(n)
	start := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		go func() {
			ctx := probe(context.Background(), joined.Done)
			<-start
			errs <- call(ctx)
		}()
	}
	close(start)
	waitGroupWithin(t, &joined, "every caller to join the flight")
	g.Open()
	out := make([]error, 0, n)
	for range n {
		out = append(out, receiveWithin(t, errs, "a caller to return"))
	}
	return out
}

func TestSingleFlightRefreshCredentials(t *testing.T) {
	ts := newDefaultTokenServer(t)
	a := newAuth(t, staticFor(ts))
	g := newGate()
	ts.SetFault(g.Fault())

	errs := startTogether(t, 100, g, a.RefreshCredentials)
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, ts.Requests(), "100 concurrent refreshes make one token request")
	assert.EqualValues(t, 1, ts.Issued())
	st := a.Stats()
	st.Obtained, st.Expiry = time.Time{}, time.Time{}
	assert.Equal(t, authenticator.Stats{TokenRequests: 1, Explicit: 1}, st)
}

func TestSingleFlightRefreshRejected(t *testing.T) {
	ts := newDefaultTokenServer(t)
	a := newAuth(t, staticFor(ts))
	require.NoError(t, a.RefreshCredentials(context.Background()))
	old := fetchNow(t, a)
	ts.ResetCounters()
	g := newGate()
	ts.SetFault(g.Fault())

	errs := startTogether(t, 100, g, func(ctx context.Context) error { return a.Rejected(ctx, old) })
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, ts.Requests(), "100 concurrent rejections make one token request")
	newValue := fetchNow(t, a)
	assert.NotEqual(t, old, newValue)

	// A rejection of the value already replaced costs nothing.
	require.NoError(t, a.Rejected(context.Background(), old))
	assert.EqualValues(t, 1, ts.Requests())
	assert.Equal(t, newValue, fetchNow(t, a))

	// A rejection of the current value does refresh, once a call had
	// accepted it (a token rejected before any call accepted it backs
	// off, and so do a few accepted ones rejected in a row:
	// TestRejectionBackoff, TestRejectionStormWhenOtherCallsAccept).
	a.Accepted(newValue)
	require.NoError(t, a.Rejected(context.Background(), newValue))
	assert.EqualValues(t, 2, ts.Requests())
	assert.NotEqual(t, newValue, fetchNow(t, a))
	assert.EqualValues(t, 2, a.Stats().Rejected)
}

func TestRefreshRejectedWithoutToken(t *testing.T) {
	ts := newDefaultTokenServer(t)
	a := newAuth(t, staticFor(ts))
	require.NoError(t, a.Rejected(context.Background(), ""))
	assert.EqualValues(t, 1, ts.Issued(), "a call that carried nothing gets the first token")
	_, err := ts.Validate(context.Background(), accessToken(t, fetchNow(t, a)))
	require.NoError(t, err)
}

func TestSingleFlightOnExpiry(t *testing.T) {
	clk, ts, a := newClockedPair(t, 100*time.Second)
	require.NoError(t, a.RefreshCredentials(context.Background()))
	old := fetchNow(t, a)
	clk.Advance(time.Hour)
	ts.ResetCounters()
	g := newGate()
	ts.SetFault(g.Fault())

	var mu sync.Mutex
	values := map[string]int{}
	errs := startTogether(t, 50, g, func(ctx context.Context) error {
		_, v, ok := credOK(a.Credential(ctx))
		mu.Lock()
		defer mu.Unlock()
		values[v]++
		if !ok {
			return errors.New("no credentials")
		}
		return nil
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, ts.Requests(), "50 callers finding the token expired make one request")
	require.Len(t, values, 1)
	assert.NotContains(t, values, old, "every caller got the new token")
	assert.EqualValues(t, 1, a.Stats().Expired)
}

func TestCancelledWaiterReturnsWhileFlightGoesOn(t *testing.T) {
	ts := newDefaultTokenServer(t)
	a := newAuth(t, staticFor(ts))
	g := newGate()
	ts.SetFault(g.Fault())

	// The first caller starts the flight, which the gate holds.
	firstJoined := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- a.RefreshCredentials(probe(context.Background(), func() { close(firstJoined) }))
	}()
	receiveWithin(t, firstJoined, "the first caller to join")

	// A second caller joins, then gives up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secondJoined := make(chan struct{})
	second := make(chan error, 1)
	go func() {
		second <- a.RefreshCredentials(probe(ctx, func() { close(secondJoined) }))
	}()
	receiveWithin(t, secondJoined, "the second caller to join")
	cancel()

	err := receiveWithin(t, second, "the cancelled caller to return")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, ts.Issued(), "the cancelled caller returned while the request was held")

	g.Open()
	require.NoError(t, receiveWithin(t, first, "the first caller to return"))
	assert.EqualValues(t, 1, ts.Issued(), "the shared request was not cancelled")
	_, err = ts.Validate(context.Background(), accessToken(t, fetchNow(t, a)))
	require.NoError(t, err)
}

func TestStats(t *testing.T) {
	clk, ts, a := newClockedPair(t, 100*time.Second)
	ctx := context.Background()
	want := authenticator.Stats{}
	require.Equal(t, want, a.Stats())
	// held notes the token just got: obtained now, for 100 s.
	held := func() { want.Obtained, want.Expiry = clk.Now(), clk.Now().Add(100*time.Second) }

	require.NoError(t, a.RefreshCredentials(ctx))
	want.TokenRequests, want.Explicit = 1, 1
	held()
	require.Equal(t, want, a.Stats())

	ts.SetFault(testserver.FaultOnce(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "")))
	require.Error(t, a.RefreshCredentials(ctx))
	want.TokenRequests, want.Explicit, want.Failures = 2, 2, 1
	require.Equal(t, want, a.Stats())

	clk.Advance(time.Second) // the pause after a refusal for good
	require.NoError(t, a.Rejected(ctx, fetchNow(t, a)))
	want.TokenRequests, want.Rejected = 3, 1
	held()
	require.Equal(t, want, a.Stats())

	require.NoError(t, a.Rejected(ctx, "Bearer some-old-token"))
	require.Equal(t, want, a.Stats(), "a stale rejection is not counted")

	clk.Advance(101 * time.Second)
	fetchNow(t, a)
	want.TokenRequests, want.Expired = 4, 1
	held()
	require.Equal(t, want, a.Stats())

	clk.Advance(95 * time.Second)
	old := fetchNow(t, a)
	require.Eventually(t, func() bool { return valueNow(a) != old }, waitFor, pollAt)
	want.TokenRequests, want.Proactive = 5, 1
	held()
	require.Equal(t, want, a.Stats())
	assert.EqualValues(t, 5, ts.Requests())
}
