package interop

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// TestRevokedToken is scenario 4, one call at a time: after Hydra revokes
// the client's token, the next call is answered Unauthenticated, the
// interceptor gets one new token and sends the call again, and it
// succeeds. Streams recover the same way.
func TestRevokedToken(t *testing.T) {
	s := newStack(t, stackSpec{client: clientSpec{Secret: specialSecret}})
	c, logs := dial(t, loadConfig(t, s.writeConfig(t, fileSpec{})))
	echo := testserver.NewEchoClient(c.Conn)
	ctx := t.Context()

	require.NoError(t, unary(ctx, echo, "first"))
	var revoked []string

	// revoke revokes the current token and returns the counters before
	// the next call.
	revoke := func() (rejected int64, requests int64) {
		t.Helper()
		token, _ := s.tokens.Last()
		hy.Revoke(t, s.client, token)
		require.False(t, hy.Introspect(t, token).Active, "a revoked token")
		revoked = append(revoked, token)
		return s.admin.Rejected(), c.Authenticator.Stats().TokenRequests
	}
	// recovered checks that the call after a revocation was rejected once
	// and cost one token request, for a token that Hydra calls active.
	recovered := func(what string, rejected, requests int64) {
		t.Helper()
		assert.Equal(t, rejected+1, s.admin.Rejected(), "%s: rejections", what)
		assert.Equal(t, requests+1, c.Authenticator.Stats().TokenRequests, "%s: token requests", what)
		token, _ := s.tokens.Last()
		assert.NotContains(t, revoked, token, "%s: the call succeeded with a new token", what)
		assert.True(t, hy.Introspect(t, token).Active, "%s: new token", what)
	}

	rejected, requests := revoke()
	require.NoError(t, unary(ctx, echo, "after revocation"))
	recovered("unary", rejected, requests)

	rejected, requests = revoke()
	got, err := echo.ServerStream(ctx, "v")
	require.NoError(t, err)
	assert.Equal(t, []string{"v-0", "v-1", "v-2"}, got)
	recovered("server stream", rejected, requests)

	rejected, requests = revoke()
	joined, err := echo.ClientStream(ctx, []string{"a", "b", "c"})
	require.NoError(t, err)
	assert.Equal(t, "a,b,c", joined, "the messages sent before the rejection were replayed once")
	recovered("client stream", rejected, requests)

	rejected, requests = revoke()
	bidi, err := echo.Bidi(ctx, []string{"x", "y"})
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "y"}, bidi)
	recovered("bidi", rejected, requests)

	// With a valid token again, nothing more happens.
	rejected, requests = s.admin.Rejected(), c.Authenticator.Stats().TokenRequests
	require.NoError(t, unary(ctx, echo, "steady"))
	assert.Equal(t, rejected, s.admin.Rejected())
	assert.Equal(t, requests, c.Authenticator.Stats().TokenRequests)

	for _, token := range revoked {
		assert.NotContains(t, logs.String(), token, "a token in the logs")
	}
	assert.NotContains(t, logs.String(), specialSecret)
}

// TestRevocationUnderLoad is scenario 4 mid-run: Hydra revokes the token
// while workers call continuously. Every call still succeeds (each
// rejected one is sent again once with the new token), and all the
// rejections together cost exactly one token request.
func TestRevocationUnderLoad(t *testing.T) {
	const (
		workers  = 6
		warmup   = 30  // successful calls before the revocation
		recovery = 300 // successful calls after it
		runLimit = time.Minute
	)
	s := newStack(t, stackSpec{})
	c, _ := dial(t, loadConfig(t, s.writeConfig(t, fileSpec{})))
	echo := testserver.NewEchoClient(c.Conn)
	require.NoError(t, unary(t.Context(), echo, "warm up"))
	s.admin.ResetCounters()

	var l load
	ctx, cancel := context.WithTimeout(t.Context(), runLimit)
	defer cancel()
	wait := l.run(ctx, echo, workers)
	defer wait()
	defer cancel()

	select {
	case <-l.after(warmup):
	case <-ctx.Done():
		t.Fatalf("only %d calls succeeded before the revocation in %v: %v", l.ok.Load(), runLimit, l.errorSummary())
	}
	token, _ := s.tokens.Last()
	before := c.Authenticator.Stats()
	hy.Revoke(t, s.client, token)
	revokedAt := l.ok.Load()
	select {
	case <-l.after(revokedAt + recovery):
	case <-ctx.Done():
		t.Fatalf("only %d calls succeeded after the revocation in %v: %v", l.ok.Load()-revokedAt, runLimit, l.errorSummary())
	}
	cancel()
	wait()

	after := c.Authenticator.Stats()
	t.Logf("%d calls ok, %d failed, %d rejected by the server; %d token requests after the revocation",
		l.ok.Load(), l.failed.Load(), s.admin.Rejected(), after.TokenRequests-before.TokenRequests)
	assert.Zero(t, l.failed.Load(), "failed calls: %v", l.errorSummary())
	assert.Positive(t, s.admin.Rejected(), "calls with the revoked token were rejected")
	assert.Equal(t, int64(1), after.TokenRequests-before.TokenRequests, "token requests after the revocation")
	assert.Equal(t, int64(1), after.Rejected-before.Rejected, "refreshes caused by rejections")
	assert.Equal(t, 2, s.tokens.Distinct(), "the revoked token and its replacement")
	assert.False(t, hy.Introspect(t, token).Active)
}
