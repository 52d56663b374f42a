package authenticator_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// A token endpoint that fails transiently once (a proxy's 502, a refused
// connection, 429 with Retry-After) costs the caller a second request, not
// the call.
func TestTransientTokenFailureIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault testserver.Fault
	}{
		{"502 with an HTML page", testserver.FaultStatus(http.StatusBadGateway, "text/html", "<h1>Bad Gateway</h1>")},
		{"503 without a body", testserver.FaultStatus(http.StatusServiceUnavailable, "", "")},
		{"connection closed", testserver.FaultCloseConn()},
		{"429 with Retry-After", func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newDefaultTokenServer(t)
			ts.SetFault(testserver.FaultOnce(tc.fault))
			a := newAuth(t, staticFor(ts))
			_, _, ok := credOK(a.Credential(t.Context()))
			require.True(t, ok, "the call gets a token")
			assert.EqualValues(t, 2, ts.Requests())
			assert.EqualValues(t, 2, a.Stats().TokenRequests)
			assert.Zero(t, a.Stats().Failures)
		})
	}
}

// A token endpoint that keeps failing transiently fails the call after
// two retries; one that refuses for good (invalid_client) is not asked
// again.
func TestTokenFailureRetriesAreBounded(t *testing.T) {
	ts := newDefaultTokenServer(t)
	ts.SetFault(testserver.FaultStatus(http.StatusBadGateway, "text/html", "<h1>Bad Gateway</h1>"))
	a := newAuth(t, staticFor(ts))
	require.Error(t, a.RefreshCredentials(t.Context()))
	assert.EqualValues(t, 3, ts.Requests(), "the request and two retries")

	ts2 := newDefaultTokenServer(t)
	ts2.SetFault(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "wrong secret"))
	b := newAuth(t, staticFor(ts2))
	require.Error(t, b.RefreshCredentials(t.Context()))
	assert.EqualValues(t, 1, ts2.Requests(), "a refusal for good is not retried")
}

// A wrong secret under 32 callers for 10 s makes one token request per
// pause (1 s, doubling while the refusals repeat), not one per call.
func TestWrongSecretUnderLoadMakesOneRequestPerPause(t *testing.T) {
	clk := newFakeClock()
	ts := newDefaultTokenServer(t)
	ts.SetFault(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "wrong secret"))
	a := newAuth(t, staticFor(ts), authenticator.WithClock(clk.Now))
	const (
		callers = 32
		step    = 50 * time.Millisecond
		span    = 10 * time.Second
	)
	var calls int
	for elapsed := time.Duration(0); elapsed < span; elapsed += step {
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				_, _, err := a.Credential(context.Background())
				assert.Error(t, err)
			})
		}
		wg.Wait()
		calls += callers
		clk.Advance(step)
	}
	// Requests at 0, 1, 3 and 7 s.
	assert.LessOrEqual(t, ts.Requests(), int64(5))
	assert.GreaterOrEqual(t, ts.Requests(), int64(3))
	t.Logf("%d calls with a wrong secret over %s (simulated): %d token requests", calls, span, ts.Requests())

	// RefreshCredentials asks at once: the person fixing the secret wants
	// to know now.
	before := ts.Requests()
	require.Error(t, a.RefreshCredentials(t.Context()))
	assert.Equal(t, before+1, ts.Requests())
}
