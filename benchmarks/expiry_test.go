package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

var (
	loadDuration = flag.Duration("load-duration", 20*time.Second,
		"how long each run of the expiry-under-load scenario sends calls")
	loadRounds = flag.Int("load-rounds", 1,
		"how many times the expiry-under-load scenario runs its pair of runs")
	loadPaired = flag.Bool("load-paired", false,
		"run the expiring and the never-expiring run of the expiry-under-load scenario at the same time, so that both see the same machine")
)

// Figures of the expiry-under-load scenario, as the issue sets them.
const (
	loadConcurrency  = 16
	loadLifetime     = 2 * time.Second
	loadTokenLatency = 200 * time.Millisecond
	// maxP99Ratio is the target of p99 with expiring tokens over p99 with
	// a token that never expires.
	maxP99Ratio = 1.10
	// slowCall is the latency from which a call counts as slow in the
	// report: a quarter of the token endpoint's latency.
	slowCall = loadTokenLatency / 4
)

// loadRun is one client sending calls at loadConcurrency, on servers of its
// own, with tokens that live lifetime (0: forever) from an endpoint that
// answers after loadTokenLatency.
type loadRun struct {
	f         *fixture
	o         *ours
	log       *tokenLog
	before    authenticator.Stats
	errs      atomic.Int64
	latencies [][]time.Duration // per goroutine
}

// newLoadRun sets a run up: servers, client, a first token and a first
// call, counters reset. The servers close at the end of t.
func newLoadRun(t *testing.T, lifetime time.Duration) *loadRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	f := newFixture(t, testserver.WithLifetime(lifetime))
	f.tokens.SetLatency(loadTokenLatency)
	log := new(tokenLog)
	o := f.newOurs(t, oursConfig{authOpts: []authenticator.Option{authenticator.WithLogger(slog.New(log))}})
	require.NoError(t, o.auth.RefreshCredentials(ctx))
	require.NoError(t, unaryCall(ctx, o.echo))
	f.tokens.ResetCounters()
	f.admin.ResetCounters()
	log.reset()
	return &loadRun{f: f, o: o, log: log, before: o.auth.Stats(), latencies: make([][]time.Duration, loadConcurrency)}
}

// start sends unary calls from loadConcurrency goroutines until deadline,
// timing each; wg is done when they all stop.
func (r *loadRun) start(ctx context.Context, deadline time.Time, wg *sync.WaitGroup) {
	for w := range loadConcurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) {
				began := time.Now()
				err := unaryCall(ctx, r.o.echo)
				lat = append(lat, time.Since(began))
				if err != nil {
					r.errs.Add(1)
				}
			}
			r.latencies[w] = lat
		})
	}
}

// loadResult is what one expiry-under-load run saw.
type loadResult struct {
	calls int
	// errors are the calls that returned an error to the caller;
	// unauthenticated are the Unauthenticated answers the server gave,
	// retried or not.
	errors          int64
	unauthenticated int64
	tokenRequests   int64
	stats           authenticator.Stats // during the run
	p50, p99, max   time.Duration
	slow            int // calls of slowCall or more
	refreshes       refreshTimes
}

// result sums up a run that has stopped.
func (r *loadRun) result() loadResult {
	all := slices.Concat(r.latencies...)
	slices.Sort(all)
	after := r.o.auth.Stats()
	res := loadResult{
		calls:           len(all),
		errors:          r.errs.Load(),
		unauthenticated: r.f.admin.Rejected(),
		tokenRequests:   r.f.tokens.Requests(),
		stats: authenticator.Stats{
			TokenRequests: after.TokenRequests - r.before.TokenRequests,
			Failures:      after.Failures - r.before.Failures,
			Rejected:      after.Rejected - r.before.Rejected,
			Expired:       after.Expired - r.before.Expired,
			Proactive:     after.Proactive - r.before.Proactive,
			Explicit:      after.Explicit - r.before.Explicit,
		},
	}
	res.refreshes = r.log.times()
	if len(all) > 0 {
		res.p50, res.p99, res.max = percentile(all, 50), percentile(all, 99), all[len(all)-1]
		res.slow = len(all) - sort.Search(len(all), func(i int) bool { return all[i] >= slowCall })
	}
	return res
}

// percentile returns the p-th percentile (nearest rank) of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank, 1)-1]
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d calls, %d failed, %d Unauthenticated answers, %d token requests (%d proactive, %d waited for on expiry, %d after a rejection), %d failed; latency p50 %v p99 %v max %v, %d calls of %v or more%v",
		r.calls, r.errors, r.unauthenticated, r.tokenRequests, r.stats.Proactive, r.stats.Expired, r.stats.Rejected, r.stats.Failures,
		r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.max.Round(time.Microsecond), r.slow, slowCall, r.refreshes)
}

// runLoads sends calls for d with each of the lifetimes, one after the
// other or, paired, all at once.
func runLoads(t *testing.T, d time.Duration, paired bool, lifetimes ...time.Duration) []loadResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+setupTimeout)
	defer cancel()
	runs := make([]*loadRun, len(lifetimes))
	if paired {
		for i, l := range lifetimes {
			runs[i] = newLoadRun(t, l)
		}
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for _, r := range runs {
			r.start(ctx, deadline, &wg)
		}
		wg.Wait()
	} else {
		// Each run starts right after its set-up, with a fresh token: one
		// set up earlier would have let its token expire while idle.
		for i, l := range lifetimes {
			runs[i] = newLoadRun(t, l)
			var wg sync.WaitGroup
			runs[i].start(ctx, time.Now().Add(d), &wg)
			wg.Wait()
		}
	}
	out := make([]loadResult, len(runs))
	for i, r := range runs {
		out[i] = r.result()
	}
	return out
}

// TestExpiryUnderLoad sends calls at concurrency 16 for -load-duration
// twice: with a token that never expires, then with tokens that live 2 s
// from an endpoint that answers after 200 ms. The expiring tokens must cost
// no Unauthenticated answer and make no caller wait for a refresh; max
// latency must stay below the endpoint's 200 ms, which is checked when the
// never-expiring run's max is below 100 ms (else the machine is too busy to
// tell). p99 is compared with the never-expiring run and reported, not
// asserted: it is a timing figure of a shared machine. -load-rounds repeats
// the pair and reports the median ratio; -load-paired runs the two at the
// same time (32 goroutines in all), so that load from elsewhere falls on
// both alike. It needs -scenarios.
func TestExpiryUnderLoad(t *testing.T) {
	if !*scenarios {
		t.Skip("long scenario: run with -scenarios")
	}
	mode := "sequential"
	if *loadPaired {
		mode = "paired"
	}
	var p50Ratios, p99Ratios []float64
	for round := range max(*loadRounds, 1) {
		t.Run(fmt.Sprintf("round=%d/mode=%s", round+1, mode), func(t *testing.T) {
			res := runLoads(t, *loadDuration, *loadPaired, 0, loadLifetime)
			never, expiring := res[0], res[1]
			t.Logf("never-expiring token: %v", never)
			t.Logf("2 s tokens, 200 ms token endpoint: %v", expiring)
			assert.Zero(t, expiring.unauthenticated, "Unauthenticated answers (target: 0)")
			assert.Zero(t, expiring.errors, "calls that failed")
			assert.Zero(t, expiring.stats.Expired, "refreshes a caller had to wait for")
			assert.Positive(t, expiring.stats.Proactive, "background refreshes")
			// Max latency is a timing figure: it is checked only when the
			// never-expiring run shows that the machine can resolve it.
			if never.max < loadTokenLatency/2 {
				assert.Less(t, expiring.max, loadTokenLatency, "max latency must stay below the token endpoint's latency")
			} else if expiring.max >= loadTokenLatency {
				t.Logf("max latency %v not checked: the never-expiring run already had a call of %v; the machine is too busy to tell",
					expiring.max.Round(time.Millisecond), never.max.Round(time.Millisecond))
			}
			if never.calls == 0 || expiring.calls == 0 {
				return
			}
			p50Ratios = append(p50Ratios, float64(expiring.p50)/float64(never.p50))
			p99Ratios = append(p99Ratios, float64(expiring.p99)/float64(never.p99))
			t.Logf("p99 2s-tokens / never-expiring = %.2f, p50 ratio %.2f, max %v vs %v",
				p99Ratios[len(p99Ratios)-1], p50Ratios[len(p50Ratios)-1], expiring.max.Round(time.Microsecond), never.max.Round(time.Microsecond))
		})
	}
	if len(p99Ratios) == 0 {
		return
	}
	ratio := medianOf(p99Ratios)
	verdict := "met"
	if ratio > maxP99Ratio {
		verdict = "MISSED (a timing figure, not asserted: compare on a quiet machine, or with -load-paired or -load-rounds)"
	}
	t.Logf("expiry under load (%s): p99 2s-tokens / never-expiring = %.2f (median of %d round(s); target <= %.2f: %s); p50 ratio %.2f",
		mode, ratio, len(p99Ratios), maxP99Ratio, verdict, medianOf(p50Ratios))
}

// medianOf returns the median of xs, which it sorts.
func medianOf(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// tokenLog is a slog.Handler that keeps when the authenticator asked for a
// token, got one (and until when it is valid) or failed. It is safe for
// concurrent use.
type tokenLog struct {
	mu      sync.Mutex // guards records
	records []tokenRecord
}

type tokenRecord struct {
	at       time.Time
	msg      string
	expiry   time.Time // of a token got; zero otherwise
	baseline bool      // the token held when the run started
}

func (l *tokenLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *tokenLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *tokenLog) WithGroup(string) slog.Handler            { return l }

func (l *tokenLog) Handle(_ context.Context, r slog.Record) error {
	rec := tokenRecord{at: r.Time, msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if t, ok := a.Value.Any().(time.Time); ok && a.Key == "expiry" {
			rec.expiry = t
		}
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
	return nil
}

// reset forgets the records but for the last token got, which becomes
// the baseline of the run.
func (l *tokenLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keep []tokenRecord
	for i := len(l.records) - 1; i >= 0; i-- {
		if strings.Contains(l.records[i].msg, "got token") {
			base := l.records[i]
			base.baseline = true
			keep = append(keep, base)
			break
		}
	}
	l.records = keep
}

// refreshTimes sums up the token requests of a run: how long the longest
// took, and the least time a new token arrived before the previous one
// expired (negative: after).
type refreshTimes struct {
	n         int
	longest   time.Duration
	minMargin time.Duration
	failures  int
}

func (r refreshTimes) String() string {
	if r.n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d token answers, the slowest in %v, the closest %v before the previous token expired",
		r.n, r.longest.Round(time.Millisecond), r.minMargin.Round(time.Millisecond))
}

// times reads the records: "requesting token" starts a request, "got
// token" ends it with a token valid until its expiry.
func (l *tokenLog) times() refreshTimes {
	l.mu.Lock()
	defer l.mu.Unlock()
	var (
		out        refreshTimes
		asked      time.Time
		prevExpiry time.Time
		first      = true
	)
	for _, rec := range l.records {
		switch {
		case rec.baseline:
			prevExpiry = rec.expiry
		case strings.Contains(rec.msg, "requesting token"):
			asked = rec.at
		case strings.Contains(rec.msg, "got token"):
			out.n++
			if !asked.IsZero() {
				out.longest = max(out.longest, rec.at.Sub(asked))
			}
			if !prevExpiry.IsZero() {
				m := prevExpiry.Sub(rec.at)
				if first || m < out.minMargin {
					out.minMargin, first = m, false
				}
			}
			prevExpiry = rec.expiry
		case strings.Contains(rec.msg, "failed"):
			out.failures++
		}
	}
	return out
}
