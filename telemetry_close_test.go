package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// Close ends everything New started, the token endpoint's keep-alive
// connections included, with WithTelemetry as without it.
func TestTelemetryCloseEndsTokenConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func() []grpcauth.Option
	}{
		{"without telemetry", func() []grpcauth.Option { return nil }},
		{"with telemetry", func() []grpcauth.Option {
			meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tracers := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
			return []grpcauth.Option{grpcauth.WithTelemetry(meters, tracers)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.admin.SetRequireAuth(true)
			opts := tc.opts()
			ignore := goleak.IgnoreCurrent()
			c, err := grpcauth.New(f.config(), opts...)
			require.NoError(t, err)
			_, err = testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
			require.NoError(t, err)
			require.NoError(t, c.Close())
			goleak.VerifyNone(t, ignore)
		})
	}
}

// The keeper counters of one MeterProvider sum its clients; when one
// closes, its counts stay, so that a counter never goes down (a delta reader
// would export a negative increment).
func TestTelemetryCountersNeverGoDown(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.admin.SetRequireAuth(true)
	reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality {
		return metricdata.DeltaTemporality
	}))
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	a := dial(t, f.config(), grpcauth.WithTelemetry(meters, nil))
	b := dial(t, f.config(), grpcauth.WithTelemetry(meters, nil))
	for _, c := range []*grpcauth.Client{a, b} {
		_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
		require.NoError(t, err)
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	first := "grpcauth.cause=first_use,grpcauth.flow=ClientSecret"
	require.EqualValues(t, 2, sums(t, rm, "grpcauth.keeper.refreshes")[first], "both clients' first tokens")

	require.NoError(t, a.Close())
	require.NoError(t, reader.Collect(t.Context(), &rm))
	for attrs, v := range sums(t, rm, "grpcauth.keeper.refreshes") {
		assert.GreaterOrEqual(t, v, int64(0), "a negative delta of the monotonic counter grpcauth.keeper.refreshes{%s}", attrs)
	}
}
