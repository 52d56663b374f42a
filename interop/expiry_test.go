package interop

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// TestProactiveRefreshShortLifetime is scenario 3: with Hydra issuing
// 5-second tokens, 20 seconds of continuous concurrent calls see no
// Unauthenticated answer, because the authenticator replaces each token in
// the background before it expires, with about one token request per
// lifetime.
func TestProactiveRefreshShortLifetime(t *testing.T) {
	const (
		lifetime = 5 * time.Second
		runFor   = 20 * time.Second
		workers  = 4
		// Each worker starts a call every 5 ms (up to 800 calls a
		// second in all): continuous, yet leaving the machine's two
		// cores room for the background refresh, which is what this
		// test is about. Back-to-back calls under the race detector
		// would starve it and measure the machine instead.
		pace = 5 * time.Millisecond
	)
	s := newStack(t, stackSpec{client: clientSpec{Lifetime: lifetime}})
	c, logs := dial(t, loadConfig(t, s.writeConfig(t, fileSpec{})))
	echo := testserver.NewEchoClient(c.Conn)

	// Warm up: the first call fetches the first token (it may be rejected
	// once for going out without one). The run starts from here.
	require.NoError(t, unary(t.Context(), echo, "warm up"))
	token, _ := s.tokens.Last()
	in := hy.Introspect(t, token)
	require.True(t, in.Active)
	// iat is when Hydra took the request, exp that instant plus the
	// lifetime a moment later, both in whole seconds.
	require.InDelta(t, int64(lifetime/time.Second), in.ExpiresAt-in.IssuedAt, 1, "Hydra's token lifetime")
	s.admin.ResetCounters()
	before := c.Authenticator.Stats()
	distinctBefore := s.tokens.Distinct()

	l := load{pace: pace}
	ctx, cancel := context.WithTimeout(t.Context(), runFor)
	defer cancel()
	start := time.Now()
	l.run(ctx, echo, workers)()
	elapsed := time.Since(start)

	after := c.Authenticator.Stats()
	requests := after.TokenRequests - before.TokenRequests
	tokens := s.tokens.Distinct() - distinctBefore
	t.Logf("%v: %d calls ok, %d failed, %d rejected by the server; %d token requests (%d proactive, %d after expiry, %d after rejection), %d new tokens seen",
		elapsed.Round(time.Millisecond), l.ok.Load(), l.failed.Load(), s.admin.Rejected(),
		requests, after.Proactive-before.Proactive, after.Expired-before.Expired, after.Rejected-before.Rejected, tokens)

	assert.Zero(t, l.failed.Load(), "failed calls: %v", l.errorSummary())
	if !assert.Zero(t, s.admin.Rejected(), "Unauthenticated answers") {
		t.Logf("validation failures: %s", s.tokens.Failures())
		t.Logf("the authenticator's log:\n%s", logs.String())
	}
	assert.Positive(t, l.ok.Load())
	// A token lives 5 s; Hydra answers expires_in 4 (it rounds what is
	// left down), and the authenticator replaces the token a fifth of that
	// before it expires, every 3.2 s: 20 s take about 6 requests. Fewer
	// than one per lifetime would mean calls went out with expired tokens;
	// more than two per lifetime would mean a refresh storm.
	minRequests, maxRequests := int64(runFor/lifetime)-1, 2*int64(runFor/lifetime)
	assert.GreaterOrEqual(t, requests, minRequests, "token requests")
	assert.LessOrEqual(t, requests, maxRequests, "token requests")
	assert.Equal(t, after.Proactive-before.Proactive, requests, "every refresh was proactive")
	assert.Zero(t, after.Failures-before.Failures, "failed token requests")
	assert.InDelta(t, requests, tokens, 1, "each token request gave a token that calls used")
}
