package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

const demoSummary = `Usage: grpcauth demo [flags]

Starts, on loopback, an in-process FlyteAdmin over TLS (with a throwaway CA)
and an OAuth2 token endpoint that issues short-lived tokens, dials them with
grpcauth.New using client credentials, and runs concurrent unary and
streaming calls for a while, revoking every token half-way. Prints progress
every second, then a report. Exits 0 only if every call succeeded.`

// demoClientID is the client the demo authenticates as.
const demoClientID = "grpcauth-demo"

// defaultTokenLifetime is short enough for proactive refreshes to happen
// during the default 5 s run (at about 1.6 s and 4.1 s), and places them
// far from the revocation at 2.5 s. A proactive refresh just before the
// revocation would let a call still carrying the previous token be retried
// with the new one, revoked too, and fail.
const defaultTokenLifetime = 2 * time.Second

// perCallTimeout bounds one call of the workload.
const perCallTimeout = 5 * time.Second

type demoOptions struct {
	duration      time.Duration
	concurrency   int
	tokenLifetime time.Duration
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", demoSummary, stderr)
	var o demoOptions
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long to run the workload")
	fs.IntVar(&o.concurrency, "concurrency", 8, "number of concurrent callers")
	fs.DurationVar(&o.tokenLifetime, "token-lifetime", defaultTokenLifetime, "lifetime of the issued tokens (whole seconds, at least 1s)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	switch {
	case o.duration <= 0:
		fmt.Fprintln(stderr, "grpcauth demo: -duration must be positive")
		return exitUsage
	case o.concurrency < 1:
		fmt.Fprintln(stderr, "grpcauth demo: -concurrency must be at least 1")
		return exitUsage
	case o.tokenLifetime < time.Second:
		fmt.Fprintln(stderr, "grpcauth demo: -token-lifetime must be at least 1s (expires_in counts whole seconds)")
		return exitUsage
	}
	rep, err := demo(ctx, o, stdout)
	if err != nil {
		sayErr(stderr, "demo", err)
		return exitFail
	}
	rep.print(stdout)
	if !rep.ok() {
		return exitFail
	}
	return exitOK
}

// callKind is one shape of call in the workload.
type callKind int

const (
	kindUnary callKind = iota
	kindServerStream
	kindClientStream
	kindBidi
	numKinds
)

var kindNames = [numKinds]string{"unary", "server-stream", "client-stream", "bidi"}

// report is what the demo measured.
type report struct {
	opts        demoOptions
	elapsed     time.Duration
	revokedAt   time.Duration // 0: no revocation happened
	calls       [numKinds]int64
	failed      int64
	errs        []string // the first few distinct errors
	target      string   // FlyteAdmin's address and how it is trusted, for errors
	tokenReqs   int64    // seen by the token server
	issued      int64
	authStats   authStats
	retries     int64
	rejected    int64 // Unauthenticated answers of the admin server
	p50, p99    time.Duration
	maxLatency  time.Duration
	interrupted bool
}

type authStats struct {
	requests, failures, firstUse, rejected, proactive, expired int64
}

func (r *report) total() int64 {
	var n int64
	for _, c := range r.calls {
		n += c
	}
	return n
}

func (r *report) ok() bool { return r.failed == 0 && r.total() > 0 && !r.interrupted }

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\ngrpcauth demo: %d callers for %s, tokens live %s", r.opts.concurrency, r.elapsed.Round(time.Millisecond), r.opts.tokenLifetime)
	if r.revokedAt > 0 {
		fmt.Fprintf(w, ", every token revoked at %s", r.revokedAt.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  calls:           %d made, %d failed (", r.total(), r.failed)
	for k := range numKinds {
		if k > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s %d", kindNames[k], r.calls[k])
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "  token requests:  %d (token server), %d issued, %d by the authenticator, %d failed\n",
		r.tokenReqs, r.issued, r.authStats.requests, r.authStats.failures)
	fmt.Fprintf(w, "  refreshes:       %d before the first call, %d after Unauthenticated, %d proactive, %d on expiry\n",
		r.authStats.firstUse, r.authStats.rejected, r.authStats.proactive, r.authStats.expired)
	fmt.Fprintf(w, "  retries:         %d calls sent again after a refresh (%d rejected by the server)\n", r.retries, r.rejected)
	fmt.Fprintf(w, "  latency:         p50 %s, p99 %s, max %s\n", roundLatency(r.p50), roundLatency(r.p99), roundLatency(r.maxLatency))
	if len(r.errs) > 0 {
		fmt.Fprintf(w, "  errors from:     %s\n", r.target)
	}
	for _, e := range r.errs {
		fmt.Fprintf(w, "  error:           %s\n", e)
	}
	switch {
	case r.interrupted:
		fmt.Fprintln(w, "result: INTERRUPTED")
	case r.ok():
		fmt.Fprintln(w, "result: OK, every call succeeded")
	case r.total() == 0:
		fmt.Fprintln(w, "result: FAILED, no call was made")
	default:
		fmt.Fprintf(w, "result: FAILED, %d of %d calls failed\n", r.failed, r.total())
	}
}

func roundLatency(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// demoEnv is the servers and the client of one demo run.
type demoEnv struct {
	dir     string
	caFile  string
	tokens  *testserver.TokenServer
	admin   *testserver.AdminServer
	client  *grpcauth.Client
	retries atomic.Int64
}

// startDemoEnv starts the servers on loopback and dials them.
func startDemoEnv(tokenLifetime time.Duration) (_ *demoEnv, err error) {
	e := &demoEnv{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	ca, err := testserver.NewCA()
	if err != nil {
		return nil, err
	}
	if e.dir, err = os.MkdirTemp("", "grpcauth-demo-"); err != nil {
		return nil, err
	}
	caFile, err := ca.WriteCertFile(e.dir)
	if err != nil {
		return nil, err
	}
	e.caFile = caFile
	secret := rand.Text()
	e.tokens, err = testserver.NewTokenServer(
		testserver.WithTokenTLS(ca),
		testserver.WithClient(demoClientID, secret),
		testserver.WithLifetime(tokenLifetime),
	)
	if err != nil {
		return nil, err
	}
	e.admin, err = testserver.NewAdminServer(
		testserver.WithTCP(),
		testserver.WithAdminTLS(ca),
		testserver.WithValidator(e.tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
			Issuer:        e.tokens.URL(),
			TokenEndpoint: e.tokens.TokenURL(),
		}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
			Scopes:                   []string{"all"},
			AuthorizationMetadataKey: testserver.DefaultHeaderKey,
		}),
	)
	if err != nil {
		return nil, err
	}
	e.client, err = grpcauth.New(grpcauth.Config{
		Endpoint:       "dns:///" + e.admin.Addr(),
		CACertFilePath: caFile,
		AuthType:       grpcauth.AuthTypeClientSecret,
		ClientID:       demoClientID,
		ClientSecret:   secret,
	}, grpcauth.WithInterceptorOptions(interceptor.WithOnRetry(func(string, codes.Code) {
		e.retries.Add(1)
	})))
	if err != nil {
		return nil, err
	}
	return e, nil
}

// close stops everything startDemoEnv started, client first.
func (e *demoEnv) close() {
	if e.client != nil {
		_ = e.client.Close()
	}
	if e.admin != nil {
		e.admin.Close()
	}
	if e.tokens != nil {
		e.tokens.Close()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// worker is one caller's tally. Only its goroutine writes it until the
// workload ends.
type worker struct {
	latencies []time.Duration
	calls     [numKinds]int64
	failed    int64
	errs      []string
}

const maxErrors = 5

// demo runs the workload and returns its report.
func demo(ctx context.Context, o demoOptions, progress io.Writer) (*report, error) {
	e, err := startDemoEnv(o.tokenLifetime)
	if err != nil {
		return nil, err
	}
	defer e.close()
	echo := testserver.NewEchoClient(e.client.Conn)

	fmt.Fprintf(progress, "grpcauth demo: FlyteAdmin at %s (TLS), token endpoint %s\n", e.admin.Addr(), e.tokens.TokenURL())
	fmt.Fprintf(progress, "running %d callers for %s; tokens live %s; every token is revoked half-way\n", o.concurrency, o.duration, o.tokenLifetime)

	var done atomic.Int64 // calls finished, for progress
	var failed atomic.Int64
	stop := make(chan struct{})
	workers := make([]worker, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		wg.Go(func() {
			w := &workers[i]
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				kind := callKind(n % int(numKinds))
				t0 := time.Now()
				err := demoCall(ctx, echo, kind, fmt.Sprintf("w%d-%d", i, n))
				w.latencies = append(w.latencies, time.Since(t0))
				w.calls[kind]++
				done.Add(1)
				if err != nil {
					w.failed++
					failed.Add(1)
					if len(w.errs) < maxErrors {
						w.errs = append(w.errs, fmt.Sprintf("%s: %v", kindNames[kind], err))
					}
				}
			}
		})
	}

	rep := &report{opts: o, target: fmt.Sprintf("FlyteAdmin at %s (TLS, trusting the CA file %s), token endpoint %s", e.admin.Addr(), e.caFile, e.tokens.TokenURL())}
	end := time.NewTimer(o.duration)
	defer end.Stop()
	revoke := time.NewTimer(o.duration / 2)
	defer revoke.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			rep.interrupted = true
			break loop
		case <-end.C:
			break loop
		case <-revoke.C:
			e.tokens.RevokeAll()
			rep.revokedAt = time.Since(start)
			fmt.Fprintf(progress, "  %5.1fs  revoked every token\n", rep.revokedAt.Seconds())
		case <-tick.C:
			st := e.client.Authenticator.Stats()
			fmt.Fprintf(progress, "  %5.1fs  %7d calls  %3d failed  %3d token requests  %3d retries\n",
				time.Since(start).Seconds(), done.Load(), failed.Load(), st.TokenRequests, e.retries.Load())
		}
	}
	close(stop)
	wg.Wait()
	rep.elapsed = time.Since(start)

	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.latencies...)
		for k := range numKinds {
			rep.calls[k] += w.calls[k]
		}
		rep.failed += w.failed
		for _, msg := range w.errs {
			if len(rep.errs) < maxErrors && !slices.Contains(rep.errs, msg) {
				rep.errs = append(rep.errs, msg)
			}
		}
	}
	slices.Sort(all)
	rep.p50, rep.p99 = percentile(all, 50), percentile(all, 99)
	if len(all) > 0 {
		rep.maxLatency = all[len(all)-1]
	}
	st := e.client.Authenticator.Stats()
	rep.authStats = authStats{requests: st.TokenRequests, failures: st.Failures, firstUse: st.FirstUse, rejected: st.Rejected, proactive: st.Proactive, expired: st.Expired}
	rep.tokenReqs, rep.issued = e.tokens.Requests(), e.tokens.Issued()
	rep.retries, rep.rejected = e.retries.Load(), e.admin.Rejected()
	return rep, nil
}

// demoCall makes one call of the given kind and checks its answer.
//
// A bidi stream sends one message: the echo server checks the token again
// on every later message, and a token revoked mid-stream cannot be retried
// without losing or duplicating messages, so it would fail by design. The
// client stream sends several; the server checks them at the start only.
func demoCall(ctx context.Context, echo *testserver.EchoClient, kind callKind, v string) error {
	ctx, cancel := context.WithTimeout(ctx, perCallTimeout)
	defer cancel()
	switch kind {
	case kindUnary:
		got, err := echo.Unary(ctx, v)
		return check(err, got == v)
	case kindServerStream:
		got, err := echo.ServerStream(ctx, v)
		return check(err, slices.Equal(got, []string{v + "-0", v + "-1", v + "-2"}))
	case kindClientStream:
		got, err := echo.ClientStream(ctx, []string{v, "a", "b"})
		return check(err, got == v+",a,b")
	default:
		got, err := echo.Bidi(ctx, []string{v})
		return check(err, slices.Equal(got, []string{v}))
	}
}

func check(err error, ok bool) error {
	switch {
	case err != nil:
		return fmt.Errorf("%s: %s", status.Code(err), status.Convert(err).Message())
	case !ok:
		return errors.New("wrong answer")
	}
	return nil
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[max(rank, 1)-1]
}
