package grpcauth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// sums returns the value of every data point of the sum metric name, keyed
// by its attributes, as "k=v,k=v".
func sums(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s is a sum of int64", name)
			for _, dp := range sum.DataPoints {
				out[attrs(dp.Attributes)] += dp.Value
			}
		}
	}
	return out
}

func attrs(s attribute.Set) string {
	var out string
	for _, kv := range s.ToSlice() {
		if out != "" {
			out += ","
		}
		out += fmt.Sprintf("%s=%s", kv.Key, kv.Value.String())
	}
	return out
}

// WithTelemetry: token requests counted and timed by flow and outcome, a
// span each with no secret, the calls sent again counted, the keeper's
// Stats read at collection; nothing at all without it.
func TestTelemetry(t *testing.T) {
	const lifetime = time.Hour
	f := newFixture(t, fixtureOptions{token: []testserver.TokenOption{testserver.WithLifetime(lifetime)}})
	f.admin.SetRequireAuth(true)
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tracers := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	c := dial(t, f.config(), grpcauth.WithTelemetry(meters, tracers))
	echo := testserver.NewEchoClient(c.Conn)

	_, err := echo.Unary(callCtx(t), "one")
	require.NoError(t, err)
	f.tokens.RevokeAll() // the next call is refused, refreshes and is sent again
	_, err = echo.Unary(callCtx(t), "two")
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	flow := "grpcauth.flow=ClientSecret"
	assert.Equal(t, map[string]int64{flow + ",grpcauth.outcome=ok": 2}, sums(t, rm, "grpcauth.token.requests"))
	assert.Equal(t, map[string]int64{flow + ",rpc.grpc.status_code=Unauthenticated": 1}, sums(t, rm, "grpcauth.calls.retried"))
	refreshes := sums(t, rm, "grpcauth.keeper.refreshes")
	assert.EqualValues(t, 1, refreshes["grpcauth.cause=first_use,"+flow])
	assert.EqualValues(t, 1, refreshes["grpcauth.cause=rejected,"+flow])
	assert.Equal(t, map[string]int64{flow: 0}, sums(t, rm, "grpcauth.keeper.failures"))
	var durations uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "grpcauth.token.request.duration" {
				for _, dp := range h.DataPoints {
					durations += dp.Count
				}
			}
		}
	}
	assert.EqualValues(t, 2, durations)
	// The token held: its age and time to expiry, read at one instant, add
	// up to its lifetime less the time its request took (the lifetime
	// counts from the request's start, the age from the answer).
	age, ttl := gauges(t, rm, "grpcauth.token.age"), gauges(t, rm, "grpcauth.token.time_to_expiry")
	require.Contains(t, age, flow)
	require.Contains(t, ttl, flow)
	assert.GreaterOrEqual(t, age[flow], 0.0)
	assert.Greater(t, ttl[flow], 0.0)
	assert.LessOrEqual(t, age[flow]+ttl[flow], lifetime.Seconds())

	var tokenSpans, metadataSpans []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		switch s.Name() {
		case "grpcauth.token_request":
			tokenSpans = append(tokenSpans, s)
		case "grpcauth.metadata_fetch":
			metadataSpans = append(metadataSpans, s)
		default:
			t.Errorf("a span of another name: %q", s.Name())
		}
	}
	require.NotEmpty(t, metadataSpans, "the AuthMetadataService requests")
	for _, s := range metadataSpans {
		assert.Contains(t, fmt.Sprint(s.Attributes()), "AuthMetadataService")
	}
	require.Len(t, tokenSpans, 2, "a span per token request")
	for _, s := range tokenSpans {
		text := fmt.Sprintf("%v %v", s.Attributes(), s.Status())
		assert.Contains(t, text, "http.response.status_code")
		assert.NotContains(t, text, testSecret)
		assert.NotContains(t, text, "/oauth2/token", "no URL in a span")
	}

	// The wrong secret: an outcome of its own, a span marked as an error.
	cfg := f.config()
	cfg.ClientSecret = "wrong-telemetry-secret"
	bad := dial(t, cfg, grpcauth.WithTelemetry(meters, tracers))
	_, err = testserver.NewEchoClient(bad.Conn).Unary(callCtx(t), "three")
	require.Error(t, err)
	require.NoError(t, reader.Collect(t.Context(), &rm))
	assert.EqualValues(t, 1, sums(t, rm, "grpcauth.token.requests")[flow+",grpcauth.outcome=Unauthorized"])
	last := spans.Ended()[len(spans.Ended())-1]
	assert.Equal(t, "Error", last.Status().Code.String())
	assert.NotContains(t, fmt.Sprint(last.Attributes()), "wrong-telemetry-secret")

	// Closed keepers' counts stay in the counters, which never go down.
	require.NoError(t, c.Close())
	require.NoError(t, bad.Close())
	require.NoError(t, reader.Collect(t.Context(), &rm))
	refreshes = sums(t, rm, "grpcauth.keeper.refreshes")
	assert.EqualValues(t, 2, refreshes["grpcauth.cause=first_use,"+flow], "both clients' first tokens")
	assert.EqualValues(t, 1, refreshes["grpcauth.cause=rejected,"+flow])
	assert.Equal(t, map[string]int64{flow: 1}, sums(t, rm, "grpcauth.keeper.failures"), "the wrong secret's request")
	assert.Empty(t, gauges(t, rm, "grpcauth.token.age"), "no open keeper holds a token")
	assert.Empty(t, gauges(t, rm, "grpcauth.token.time_to_expiry"))
}

// gauges returns the value of every data point of the float gauge name,
// keyed by its attributes.
func gauges(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			g, ok := m.Data.(metricdata.Gauge[float64])
			require.True(t, ok, "%s is a gauge of float64", name)
			for _, dp := range g.DataPoints {
				out[attrs(dp.Attributes)] = dp.Value
			}
		}
	}
	return out
}

// With telemetry on, a call that needs no new token allocates no more
// than with it off, unary or streaming: the per-call path is not
// instrumented. (Allocation counts, not time: they do not depend on the
// machine's load. Not under -race, which allocates on its own.)
func TestTelemetryCostsNoAllocationPerCall(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	f := newFixture(t, fixtureOptions{})
	f.admin.SetRequireAuth(true)
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tracers := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	off := testserver.NewEchoClient(dial(t, f.config()).Conn)
	on := testserver.NewEchoClient(dial(t, f.config(), grpcauth.WithTelemetry(meters, tracers)).Conn)
	ctx := callCtx(t)
	for name, call := range map[string]func(*testserver.EchoClient) error{
		"unary":         func(c *testserver.EchoClient) error { _, err := c.Unary(ctx, "x"); return err },
		"server-stream": func(c *testserver.EchoClient) error { _, err := c.ServerStream(ctx, "x"); return err },
	} {
		allocs := func(c *testserver.EchoClient) float64 {
			require.NoError(t, call(c)) // the token is got before counting
			return testing.AllocsPerRun(300, func() {
				if err := call(c); err != nil {
					t.Fatal(err)
				}
			})
		}
		without, with := allocs(off), allocs(on)
		t.Logf("%s allocs/call: telemetry off %.1f, on %.1f", name, without, with)
		assert.LessOrEqual(t, with, without+0.5, "%s: telemetry on costs allocations per call", name)
	}
}
