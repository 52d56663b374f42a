// Package telemetry is what grpcauth.WithTelemetry turns on: OpenTelemetry
// counters, a histogram and spans of the token requests and the
// AuthMetadataService requests, counters of the keepers' Stats, gauges of
// the age and time to expiry of the tokens they hold, and a counter of the
// calls sent again. A call that needs no new token costs
// nothing more: the per-call path is not instrumented.
package telemetry

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
)

// instrumentation is the name of grpcauth's meter and tracer.
const instrumentation = "github.com/flyteauth/grpcauth"

// T is one client's instruments; a nil *T is off, and its methods give
// back what they are given.
type T struct {
	flow     attribute.KeyValue
	tracer   trace.Tracer // nil without a tracer provider
	requests metric.Int64Counter
	duration metric.Float64Histogram
	retries  metric.Int64Counter
	meter    metric.Meter         // nil without a meter provider
	meters   metric.MeterProvider // its provider
}

// New returns the instruments of the providers for the token of flow, or
// nil when both are nil.
func New(meters metric.MeterProvider, tracers trace.TracerProvider, flow string) (*T, error) {
	if meters == nil && tracers == nil {
		return nil, nil
	}
	t := &T{flow: attribute.String("grpcauth.flow", flow)}
	if tracers != nil {
		t.tracer = tracers.Tracer(instrumentation)
	}
	if meters == nil {
		return t, nil
	}
	t.meter, t.meters = meters.Meter(instrumentation), meters
	var errs [3]error
	t.requests, errs[0] = t.meter.Int64Counter("grpcauth.token.requests",
		metric.WithDescription("Token requests sent to the token endpoint, by flow and outcome."))
	t.duration, errs[1] = t.meter.Float64Histogram("grpcauth.token.request.duration", metric.WithUnit("s"),
		metric.WithDescription("How long a token request took, by flow and outcome."))
	t.retries, errs[2] = t.meter.Int64Counter("grpcauth.calls.retried",
		metric.WithDescription("Calls sent again with a new token after the server refused theirs, by the refusal's code."))
	return t, errors.Join(errs[:]...)
}

// Transport wraps the token requests' round tripper: a span, a count and a
// duration for each. Neither the span nor the metrics carry a URL's query,
// a header or a body.
func (t *T) Transport(base http.RoundTripper) http.RoundTripper {
	if t == nil {
		return base
	}
	return &tracedTokens{t: t, base: base}
}

type tracedTokens struct {
	t    *T
	base http.RoundTripper
}

// CloseIdleConnections reaches the wrapped transport, so that the
// keeper's Close ends its connections.
func (r *tracedTokens) CloseIdleConnections() {
	if c, ok := r.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (r *tracedTokens) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var span trace.Span
	if r.t.tracer != nil {
		ctx, span = r.t.tracer.Start(ctx, "grpcauth.token_request", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(r.t.flow, attribute.String("server.address", req.URL.Hostname())))
		req = req.WithContext(ctx)
	}
	start := time.Now()
	resp, err := r.base.RoundTrip(req)
	outcome := "error"
	if err == nil {
		outcome = http.StatusText(resp.StatusCode)
		if resp.StatusCode < 300 {
			outcome = "ok"
		}
	}
	if span != nil {
		if err == nil {
			span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		}
		if outcome != "ok" {
			span.SetStatus(otelcodes.Error, outcome)
		}
		span.End()
	}
	if r.t.meter != nil {
		attrs := metric.WithAttributes(r.t.flow, attribute.String("grpcauth.outcome", outcome))
		r.t.requests.Add(ctx, 1, attrs)
		r.t.duration.Record(ctx, time.Since(start).Seconds(), attrs)
	}
	return resp, err
}

// Metadata wraps the connection the config store asks, so that each
// AuthMetadataService request is a span.
func (t *T) Metadata(meta grpc.ClientConnInterface) grpc.ClientConnInterface {
	if t == nil || t.tracer == nil || meta == nil {
		return meta
	}
	return tracedMetadata{ClientConnInterface: meta, t: t}
}

type tracedMetadata struct {
	grpc.ClientConnInterface
	t *T
}

func (c tracedMetadata) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	ctx, span := c.t.tracer.Start(ctx, "grpcauth.metadata_fetch", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(c.t.flow, attribute.String("rpc.method", method)))
	defer span.End()
	err := c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
	if err != nil {
		span.SetStatus(otelcodes.Error, status.Code(err).String())
	}
	return err
}

// OnRetry counts a call sent again; nil without a meter.
func (t *T) OnRetry() func(string, codes.Code) {
	if t == nil || t.meter == nil {
		return nil
	}
	return func(_ string, code codes.Code) {
		t.retries.Add(context.Background(), 1, metric.WithAttributes(t.flow, attribute.String("rpc.grpc.status_code", code.String())))
	}
}

// Observe counts k's Stats, when a reader collects, in the keeper counters
// of t's meter provider, and returns the end of it, which Close calls.
// The counters are the sums over every keeper of the provider, by flow: a
// closed keeper's last Stats stay in them, so that they never go down.
func (t *T) Observe(k *authenticator.Keeper) (func(), error) {
	if t == nil || t.meter == nil {
		return func() {}, nil
	}
	a, err := t.statsOf()
	if err != nil {
		return nil, err
	}
	flow := t.flow.Value.AsString()
	a.mu.Lock()
	a.live[k] = flow
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, ok := a.live[k]; ok {
			delete(a.live, k)
			a.retired[flow] = addStats(a.retired[flow], k.Stats())
		}
	}, nil
}

// keeperStats is the keeper counters of one meter provider.
type keeperStats struct {
	mu      sync.Mutex
	live    map[*authenticator.Keeper]string // keeper → flow
	retired map[string]authenticator.Stats   // flow → the closed keepers' sums
}

// statsByProvider holds one keeperStats per meter provider (or, for a
// provider that cannot be a map key, per meter it hands out), registered
// once; when neither can be a key, each client gets its own, and the
// gauges show the last client's tokens.
var statsByProvider sync.Map

// statsOf returns the keeper counters of t's meter provider, registering
// them on first use.
func (t *T) statsOf() (*keeperStats, error) {
	var key any = t.meters
	if !reflect.TypeOf(key).Comparable() {
		key = t.meter
	}
	comparable := reflect.TypeOf(key).Comparable()
	if comparable {
		if a, ok := statsByProvider.Load(key); ok {
			return a.(*keeperStats), nil
		}
	}
	a := &keeperStats{live: map[*authenticator.Keeper]string{}, retired: map[string]authenticator.Stats{}}
	got, err1 := t.meter.Int64ObservableCounter("grpcauth.keeper.refreshes",
		metric.WithDescription("Times the keepers asked for a new token, by cause (first_use, rejected, expired, proactive, explicit)."))
	failed, err2 := t.meter.Int64ObservableCounter("grpcauth.keeper.failures",
		metric.WithDescription("Token requests of the keepers that failed."))
	hits, err3 := t.meter.Int64ObservableCounter("grpcauth.keeper.cache_hits",
		metric.WithDescription("Tokens the keepers took from the token cache instead of asking."))
	age, err4 := t.meter.Float64ObservableGauge("grpcauth.token.age", metric.WithUnit("s"),
		metric.WithDescription("Seconds since the oldest of the tokens the open keepers hold was got (from the token endpoint or the cache)."))
	ttl, err5 := t.meter.Float64ObservableGauge("grpcauth.token.time_to_expiry", metric.WithUnit("s"),
		metric.WithDescription("Seconds until the first of the tokens the open keepers hold expires; negative once it has. Tokens of unknown lifetime are left out."))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}
	if comparable {
		if prev, loaded := statsByProvider.LoadOrStore(key, a); loaded {
			return prev.(*keeperStats), nil
		}
	}
	_, err := t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for flow, s := range a.sums() {
			f := attribute.String("grpcauth.flow", flow)
			for cause, n := range map[string]int64{
				"first_use": s.FirstUse, "rejected": s.Rejected, "expired": s.Expired, "proactive": s.Proactive, "explicit": s.Explicit,
			} {
				o.ObserveInt64(got, n, metric.WithAttributes(f, attribute.String("grpcauth.cause", cause)))
			}
			o.ObserveInt64(failed, s.Failures, metric.WithAttributes(f))
			o.ObserveInt64(hits, s.CacheHits, metric.WithAttributes(f))
		}
		for flow, h := range a.held(time.Now()) {
			f := metric.WithAttributes(attribute.String("grpcauth.flow", flow))
			o.ObserveFloat64(age, h.age.Seconds(), f)
			if h.expires {
				o.ObserveFloat64(ttl, h.ttl.Seconds(), f)
			}
		}
		return nil
	}, got, failed, hits, age, ttl)
	return a, err
}

// heldTokens is what the gauges show of one flow's tokens.
type heldTokens struct {
	age     time.Duration // of the oldest token
	ttl     time.Duration // of the first to expire
	expires bool          // some token has a known expiry
}

// held returns, by flow, the ages and times to expiry of the tokens the
// live keepers hold at now; a flow none of whose keepers holds one is
// left out.
func (a *keeperStats) held(now time.Time) map[string]heldTokens {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]heldTokens{}
	for k, flow := range a.live {
		st := k.Stats()
		if st.Obtained.IsZero() {
			continue
		}
		h := out[flow]
		h.age = max(h.age, now.Sub(st.Obtained))
		if !st.Expiry.IsZero() {
			if ttl := st.Expiry.Sub(now); !h.expires || ttl < h.ttl {
				h.ttl, h.expires = ttl, true
			}
		}
		out[flow] = h
	}
	return out
}

// sums returns the Stats of every keeper, live and closed, by flow.
func (a *keeperStats) sums() map[string]authenticator.Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]authenticator.Stats, len(a.retired)+1)
	for flow, s := range a.retired {
		out[flow] = s
	}
	for k, flow := range a.live {
		out[flow] = addStats(out[flow], k.Stats())
	}
	return out
}

func addStats(a, b authenticator.Stats) authenticator.Stats {
	return authenticator.Stats{
		TokenRequests: a.TokenRequests + b.TokenRequests, Failures: a.Failures + b.Failures, CacheHits: a.CacheHits + b.CacheHits,
		FirstUse: a.FirstUse + b.FirstUse, Rejected: a.Rejected + b.Rejected, Expired: a.Expired + b.Expired,
		Proactive: a.Proactive + b.Proactive, Explicit: a.Explicit + b.Explicit,
	}
}
