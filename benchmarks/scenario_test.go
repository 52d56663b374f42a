package benchmarks

import (
	"context"
	"flag"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// scenarios turns on the long scenario measurements (expiry under load)
// and the full-size naive storm.
var scenarios = flag.Bool("scenarios", false,
	"also run the long scenario measurements (expiry under load: two runs of -load-duration each) and the naive storm at full size")

// Figures of the scenarios, as the issue sets them.
const (
	stormCalls      = 1000
	stormCallsShort = 100
)

// rejectBarrier is a unary interceptor that runs after the one under test,
// next to the transport. It holds every attempt the server rejects with
// Unauthenticated until n attempts have been rejected, so that n concurrent
// calls are all rejected before any of them can refresh: the storm is as
// bad as it can be, and its count of token requests is exact.
type rejectBarrier struct {
	n    int64
	seen atomic.Int64
	all  chan struct{} // closed at the n-th rejection
}

func newRejectBarrier(n int) *rejectBarrier {
	return &rejectBarrier{n: int64(n), all: make(chan struct{})}
}

func (b *rejectBarrier) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if status.Code(err) != codes.Unauthenticated {
		return err
	}
	if k := b.seen.Add(1); k <= b.n {
		if k == b.n {
			close(b.all)
		}
		select {
		case <-b.all:
		case <-ctx.Done():
		}
	}
	return err
}

// stormResult is what one storm cost.
type stormResult struct {
	failed        int   // calls that returned an error
	rejected      int64 // Unauthenticated answers of the server
	echoCalls     int64 // calls that reached the server, retries included
	tokenRequests int64
	elapsed       time.Duration
}

// storm sends n concurrent unary calls with a token that has just been
// revoked and counts what they cost.
func storm(t *testing.T, f *fixture, echo *testserver.EchoClient, n int) stormResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	f.tokens.RevokeAll()
	f.tokens.ResetCounters()
	f.admin.ResetCounters()

	start := make(chan struct{})
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for range n {
		wg.Go(func() {
			<-start
			if err := unaryCall(ctx, echo); err != nil {
				failed.Add(1)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return stormResult{
		failed:        int(failed.Load()),
		rejected:      f.admin.Rejected(),
		echoCalls:     f.admin.EchoCalls(),
		tokenRequests: f.tokens.Requests(),
		elapsed:       time.Since(began),
	}
}

// TestStorm: 1,000 concurrent calls rejected because their token was
// revoked cost ours one token request; a naive interceptor that refreshes
// on every failure, as flytekit's does, makes one per call. The naive storm
// is slow (a thousand token requests, seconds under the race detector), so
// it runs with 100 calls unless -scenarios is given; with -short, both run
// with 100.
func TestStorm(t *testing.T) {
	n, naiveN := stormCalls, stormCallsShort
	if *scenarios {
		naiveN = stormCalls
	}
	if testing.Short() {
		n, naiveN = stormCallsShort, stormCallsShort
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	var ourRes, naiveRes stormResult
	t.Run("ours", func(t *testing.T) {
		f := newFixture(t)
		b := newRejectBarrier(n)
		o := f.newOurs(t, oursConfig{inner: []grpc.UnaryClientInterceptor{b.unary}})
		require.NoError(t, o.auth.RefreshCredentials(ctx))
		require.NoError(t, unaryCall(ctx, o.echo))
		before := o.auth.Stats()

		ourRes = storm(t, f, o.echo, n)
		after := o.auth.Stats()
		t.Logf("storm, ours: %d rejected calls -> %d token request(s) (%d refresh(es) for a rejection), %d failed calls, %d echo attempts, %v",
			ourRes.rejected, ourRes.tokenRequests, after.Rejected-before.Rejected, ourRes.failed, ourRes.echoCalls, ourRes.elapsed.Round(time.Millisecond))
		assert.Equal(t, int64(n), ourRes.rejected, "rejected calls")
		assert.Zero(t, ourRes.failed, "calls that failed")
		assert.Equal(t, int64(1), ourRes.tokenRequests, "token requests (target: 1)")
		assert.Equal(t, int64(1), after.TokenRequests-before.TokenRequests, "token requests the authenticator counted")
	})
	t.Run("naive", func(t *testing.T) {
		f := newFixture(t)
		b := newRejectBarrier(naiveN)
		naive := &naiveAuth{cfg: f.clientCredentials(), http: httpClient(t)}
		conn := dial(t, f.admin, grpc.WithChainUnaryInterceptor(naive.unary, b.unary))
		echo := testserver.NewEchoClient(conn)
		require.NoError(t, naive.refresh(ctx))
		require.NoError(t, unaryCall(ctx, echo))

		naiveRes = storm(t, f, echo, naiveN)
		t.Logf("storm, naive (flytekit-like): %d rejected calls -> %d token requests, %d failed calls, %d echo attempts, %v",
			naiveRes.rejected, naiveRes.tokenRequests, naiveRes.failed, naiveRes.echoCalls, naiveRes.elapsed.Round(time.Millisecond))
		assert.Equal(t, int64(naiveN), naiveRes.rejected, "rejected calls")
		assert.Zero(t, naiveRes.failed, "calls that failed")
		assert.Equal(t, int64(naiveN), naiveRes.tokenRequests, "token requests: one per rejected call")
	})
	t.Logf("storm: ours %d token request(s) for %d rejected calls; naive %d for %d",
		ourRes.tokenRequests, ourRes.rejected, naiveRes.tokenRequests, naiveRes.rejected)
}

// TestColdStart counts the round trips a new client makes before its first
// call succeeds, for ours (the token is fetched before the first attempt,
// as flyteidl's Go client does) and for the lazy behaviour of flytekit and
// of this module before (the first attempt carries no token, is rejected,
// and is retried after the token request): the two AuthMetadataService RPCs
// of the Remote store on the same connection (sent in parallel), the token
// request, and the attempts. The servers answer after coldLatency, so the
// elapsed time shows the critical path; it is logged, not checked.
func TestColdStart(t *testing.T) {
	const coldLatency = 25 * time.Millisecond
	shapes := []struct {
		name string
		call callFunc
	}{
		{"unary", unaryCall},
		{"server-stream", streamCall},
	}
	for _, lazy := range []bool{false, true} {
		for _, shape := range shapes {
			name := "ours/" + shape.name
			if lazy {
				name = "lazy/" + shape.name
			}
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
				defer cancel()
				f := newFixture(t)
				f.admin.SetMetadataLatency(coldLatency)
				f.tokens.SetLatency(coldLatency)
				var cfg oursConfig
				if lazy {
					// flytekit's first call, and this module's before.
					cfg.authOpts = []authenticator.Option{authenticator.WithLazyStart()}
				}
				o := f.newOurs(t, cfg)

				began := time.Now()
				require.NoError(t, shape.call(ctx, o.echo))
				elapsed := time.Since(began)

				metaOAuth2, metaPublic := f.admin.MetadataCalls()
				failed, attempts, tokens := f.admin.Rejected(), f.admin.EchoCalls(), f.tokens.Requests()
				t.Logf("cold start, %s: %d metadata RPCs (GetOAuth2Metadata %d, GetPublicClientConfig %d, in parallel), %d token request(s), %d failed attempt(s), %d attempts in all; %v with %v per metadata RPC and token request",
					name, metaOAuth2+metaPublic, metaOAuth2, metaPublic, tokens, failed, attempts, elapsed.Round(time.Millisecond), coldLatency)
				assert.Equal(t, int64(1), metaOAuth2, "GetOAuth2Metadata calls")
				assert.Equal(t, int64(1), metaPublic, "GetPublicClientConfig calls")
				assert.Equal(t, int64(1), tokens, "token requests")
				wantFailed := int64(0)
				if lazy {
					wantFailed = 1
				}
				assert.Equal(t, wantFailed, failed, "failed attempts")
				assert.Equal(t, failed+1, attempts, "attempts: the failed ones and the one that succeeded")
				assert.False(t, f.admin.MetadataRPCsSawToken(), "the metadata RPCs are anonymous")
				stats := o.auth.Stats()
				assert.Equal(t, int64(1), stats.TokenRequests, "token requests the authenticator counted")

				// The same client again: everything is cached.
				f.admin.ResetCounters()
				f.tokens.ResetCounters()
				require.NoError(t, shape.call(ctx, o.echo))
				metaOAuth2, metaPublic = f.admin.MetadataCalls()
				assert.Equal(t, int64(0), metaOAuth2+metaPublic+f.tokens.Requests()+f.admin.Rejected(), "round trips of the second call besides itself")
			})
		}
	}
}

// TestRejectEveryToken measures the token requests a client makes against
// a server that rejects every token, however fresh (a misconfigured
// audience, say), with 32 callers each making a call every 10 ms. Before
// the Keeper's rejection backoff, every failed call cost one token request:
// the client hit the IdP at its own call rate. It runs 3 s, or 60 s with
// -scenarios, and reports requests per minute.
func TestRejectEveryToken(t *testing.T) {
	const callers = 32
	run := 3 * time.Second
	if *scenarios {
		run = time.Minute
	}
	f := newFixture(t)
	f.admin.SetRejectAll(true)
	o := f.newOurs(t, oursConfig{})

	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := unaryCall(cctx, o.echo)
				ccancel()
				calls.Add(1)
				if status.Code(err) == codes.Unauthenticated {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	requests := f.tokens.Requests()
	perMinute := float64(requests) / run.Minutes()
	t.Logf("reject every token, %d callers for %v: %d calls, %d failed with Unauthenticated, %d token requests (%.1f per minute; one per failed call before the backoff would be %d)",
		callers, run, calls.Load(), failed.Load(), requests, perMinute, failed.Load())
	assert.Equal(t, calls.Load(), failed.Load(), "every call fails with Unauthenticated")
	// The backoff doubles from 1 s (±20%) up to 1 min: 3 s allow at most
	// the first request, the one after the first rejection and 3 more.
	if !*scenarios {
		assert.LessOrEqual(t, requests, int64(5))
	}
}
