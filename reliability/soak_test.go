package reliability_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

const (
	soakCallers = 32
	// soakLifetime is short so that a 30 s run sees a dozen token
	// lifetimes, each ending in a proactive refresh.
	soakLifetime = 3 * time.Second
	// soakTokenTimeout ends hanging token requests well within a call's
	// deadline.
	soakTokenTimeout = 3 * time.Second
	soakCallTimeout  = 6 * time.Second
	// soakMargin is the authenticator's default refresh margin for
	// soakLifetime: a fifth of it.
	soakMargin = soakLifetime / 5
	// soakSlack is what the token-request bound allows on top of one
	// request per lifetime, revocation and applied fault: a lifetime that
	// straddles the start and one that straddles the end.
	soakSlack = 2
)

// soakFaults are the token endpoint failures the chaos loop injects.
var soakFaults = []struct {
	name string
	f    testserver.Fault
}{
	{"500", testserver.FaultStatus(http.StatusInternalServerError, "text/plain", "oops")},
	{"502 html", testserver.FaultStatus(http.StatusBadGateway, "text/html", htmlBody)},
	{"401 invalid_client", testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "try later")},
	{"garbage", testserver.FaultGarbage()},
	{"reset mid-body", testserver.FaultResetMidBody()},
	{"close conn", testserver.FaultCloseConn()},
	{"hang", testserver.FaultHang()},
}

// soakStats are the counters of one soak run. Safe for concurrent use.
type soakStats struct {
	calls, ok, hung, nonStatus, wrong atomic.Int64
	revocations, faultsSet, faults    atomic.Int64

	mu          sync.Mutex // guards the fields below
	codes       map[codes.Code]int64
	shapes      map[string]int64
	firstStrays []string // the first few unexpected errors, for the failure message
	maxCall     time.Duration
}

func (s *soakStats) record(sh shape, d time.Duration, err error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shapes[sh.name]++
	s.maxCall = max(s.maxCall, d)
	stray := func(kind string) {
		if len(s.firstStrays) < 5 {
			s.firstStrays = append(s.firstStrays, fmt.Sprintf("%s %s: %T %v", kind, sh.name, err, err))
		}
	}
	if d > soakCallTimeout+hangGrace {
		s.hung.Add(1)
		stray(fmt.Sprintf("hung %s", d))
	}
	var wrong errWrongAnswer
	switch st, isStatus := status.FromError(err); {
	case err == nil:
		s.ok.Add(1)
		s.codes[codes.OK]++
	case errors.As(err, &wrong):
		s.wrong.Add(1)
		stray("wrong answer")
	case !isStatus:
		s.nonStatus.Add(1)
		stray("not a status error")
	default:
		s.codes[st.Code()]++
	}
}

// TestSoak runs for -soak (30 s by default): go test -short skips it,
// unless -soak is given too. make test (what CI runs) has no -short.
func TestSoak(t *testing.T) {
	if testing.Short() && !soakFlagSet() {
		t.Skipf("a %v soak; run without -short, or give -soak", *soakFor)
	}
	duration := *soakFor
	goroutinesBefore := runtime.NumGoroutine()
	r := newRig(t, rigConfig{
		tcp:      true,
		lifetime: soakLifetime,
		authOpts: []authenticator.Option{authenticator.WithTokenTimeout(soakTokenTimeout)},
	})
	// Warm up: the first token, the config, the connection.
	for _, s := range allShapes {
		require.NoError(t, r.callWithin(t, s, callTimeout))
	}
	heapBefore := heapInuse(&r.logs.LogBuffer)
	started := time.Now()
	statsBefore := r.auth.Stats()
	serverBefore := r.tokens.Requests()

	st := &soakStats{codes: make(map[codes.Code]int64), shapes: make(map[string]int64)}
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var wg sync.WaitGroup
	for i := range soakCallers {
		wg.Go(func() { soakCaller(ctx, r, st, rand.New(rand.NewPCG(seed, uint64(i)))) })
	}
	wg.Go(func() { soakChaos(ctx, r, st, rand.New(rand.NewPCG(seed, soakCallers))) })
	// The heap under load, a quarter in and near the end: flat if nothing
	// accumulates per call.
	var heapEarly, heapLate uint64
	wg.Go(func() {
		heapEarly = heapAt(ctx, started.Add(duration/4), &r.logs.LogBuffer)
		heapLate = heapAt(ctx, started.Add(duration*19/20), &r.logs.LogBuffer)
	})

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	allDone := time.NewTimer(duration + soakCallTimeout + hangGrace)
	defer allDone.Stop()
	select {
	case <-finished:
	case <-allDone.C:
		buf := make([]byte, 1<<20)
		t.Fatalf("callers still running %s after the soak ended:\n%s", soakCallTimeout+hangGrace, buf[:runtime.Stack(buf, true)])
	}
	r.tokens.SetFault(nil)

	stats := r.auth.Stats()
	requests := stats.TokenRequests - statsBefore.TokenRequests
	serverRequests := r.tokens.Requests() - serverBefore
	// Callers finish their last calls after the soak ends, so the tokens'
	// lifetimes are counted over the whole time the requests were counted.
	lifetimes := int64(time.Since(started)/(soakLifetime-soakMargin)) + 1
	bound := lifetimes + st.revocations.Load() + st.faults.Load() + soakSlack
	heapAfter := heapInuse(&r.logs.LogBuffer)

	// Everything stops; goroutines must come back to where they were.
	r.close()
	goroutinesAfter := 0
	if !pollUntil(10*time.Second, func() bool {
		goroutinesAfter = runtime.NumGoroutine()
		return goroutinesAfter <= goroutinesBefore
	}) {
		t.Fatalf("goroutines: %d before the soak, %d after:\n%s", goroutinesBefore, goroutinesAfter, allStacks())
	}
	goleak.VerifyNone(t)

	st.mu.Lock()
	defer st.mu.Unlock()
	t.Logf("soak: %s, %d callers (%s)", duration, soakCallers, formatCounts(st.shapes))
	t.Logf("calls: %d, succeeded %d, by code: %s; longest call %s", st.calls.Load(), st.ok.Load(), formatCodes(st.codes), st.maxCall.Round(time.Millisecond))
	t.Logf("chaos: %d revocations, %d fault windows set, %d faults applied", st.revocations.Load(), st.faultsSet.Load(), st.faults.Load())
	t.Logf("token requests: %d by the authenticator (%d failed; %d rejected, %d expired, %d proactive), %d at the server; bound %d = %d lifetimes + %d revocations + %d faults + %d slack",
		requests, stats.Failures-statsBefore.Failures, stats.Rejected-statsBefore.Rejected, stats.Expired-statsBefore.Expired,
		stats.Proactive-statsBefore.Proactive, serverRequests, bound, lifetimes, st.revocations.Load(), st.faults.Load(), soakSlack)
	t.Logf("goroutines: %d before, %d after; heap in use after GC: %.1f MiB before, %.1f MiB after; under load %.1f MiB at 25%%, %.1f MiB at 95%%",
		goroutinesBefore, goroutinesAfter, mib(heapBefore), mib(heapAfter), mib(heapEarly), mib(heapLate))

	require.Zero(t, st.hung.Load(), "calls hung past their deadline: %v", st.firstStrays)
	require.Zero(t, st.nonStatus.Load(), "calls failed with an error that is not a status: %v", st.firstStrays)
	require.Zero(t, st.wrong.Load(), "calls lost or duplicated messages: %v", st.firstStrays)
	require.Positive(t, st.ok.Load(), "no call succeeded")
	require.LessOrEqual(t, requests, bound, "token requests beyond lifetimes + revocations + faults: a refresh storm")
	require.LessOrEqual(t, serverRequests, bound, "token requests at the server beyond the bound")
	// Generous: the heap may double and grow by 16 MiB, for buffers that
	// settle at a larger size; a leak per call (tens of thousands of calls
	// between the samples) would not fit.
	require.LessOrEqual(t, heapAfter, 2*heapBefore+16<<20, "heap in use after the soak grew from %.1f to %.1f MiB", mib(heapBefore), mib(heapAfter))
	if heapEarly > 0 && heapLate > 0 {
		require.LessOrEqual(t, heapLate, 2*heapEarly+16<<20, "heap in use under load grew from %.1f to %.1f MiB", mib(heapEarly), mib(heapLate))
	}
	require.False(t, r.admin.MetadataRPCsSawToken(), "a token rode on an AuthMetadataService RPC")
	meta, pub := r.admin.MetadataCalls()
	require.Equal(t, [2]int64{1, 1}, [2]int64{meta, pub}, "AuthMetadataService was asked once and cached")
	r.requireNoLeak(t)
}

// soakCaller makes calls of random shapes until ctx ends.
func soakCaller(ctx context.Context, r *rig, st *soakStats, rng *rand.Rand) {
	for ctx.Err() == nil {
		s := allShapes[rng.IntN(len(allShapes))]
		cctx, cancel := context.WithTimeout(context.Background(), soakCallTimeout)
		start := time.Now()
		err := s.call(cctx, r.echo)
		d := time.Since(start)
		cancel()
		st.record(s, d, err)
	}
}

// soakChaos revokes every token or sets a window of 1 to 3 token endpoint
// faults, every 0.3 to 1.5 s, until ctx ends.
func soakChaos(ctx context.Context, r *rig, st *soakStats, rng *rand.Rand) {
	pause := func() time.Duration {
		return 300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond)))
	}
	timer := time.NewTimer(pause())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if rng.IntN(2) == 0 {
			r.revokeAll()
			st.revocations.Add(1)
		} else {
			f := soakFaults[rng.IntN(len(soakFaults))].f
			r.tokens.SetFault(testserver.FaultTimes(1+rng.IntN(3), func(w http.ResponseWriter, req *http.Request) bool {
				st.faults.Add(1)
				return f(w, req)
			}))
			st.faultsSet.Add(1)
		}
		timer.Reset(pause())
	}
}

// heapAt returns heapInuse at time at, or 0 if ctx ends first.
func heapAt(ctx context.Context, at time.Time, logs *testserver.LogBuffer) uint64 {
	timer := time.NewTimer(time.Until(at))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return 0
	case <-timer.C:
		return heapInuse(logs)
	}
}

// heapInuse returns the bytes in in-use heap spans after a full
// collection, less what the test's own log buffer holds: a line per
// rejected call adds up to tens of MiB over a soak, and it is the test's,
// not the library's.
func heapInuse(logs *testserver.LogBuffer) uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse - min(m.HeapInuse, uint64(logs.Cap()))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func formatCodes(m map[codes.Code]int64) string {
	var parts []string
	for c, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func formatCounts(m map[string]int64) string {
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// pollUntil polls cond until it holds or d has passed, and reports whether
// it held.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// soakFlagSet reports whether -soak was given on the command line.
func soakFlagSet() bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "soak" })
	return set
}
