package grpcauth_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// Closing NewClient's connection ends its parts: its token leaves the
// gauges, which show only the tokens open clients hold.
func TestGaugesForgetAClosedNewClient(t *testing.T) {
	f := newFixture(t, fixtureOptions{token: []testserver.TokenOption{testserver.WithLifetime(time.Hour)}})
	f.admin.SetRequireAuth(true)
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	conn, err := grpcauth.NewClient(f.config(), grpcauth.WithTelemetry(meters, nil))
	require.NoError(t, err)
	_, err = testserver.NewEchoClient(conn).Unary(callCtx(t), "x")
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	require.Contains(t, gauges(t, rm, "grpcauth.token.age"), "grpcauth.flow=ClientSecret", "the open connection's token")

	require.NoError(t, conn.Close())
	require.Eventually(t, func() bool {
		require.NoError(t, reader.Collect(t.Context(), &rm))
		return len(gauges(t, rm, "grpcauth.token.age"))+len(gauges(t, rm, "grpcauth.token.time_to_expiry")) == 0
	}, 10*time.Second, 5*time.Millisecond, "no open client holds a token")
}

// uncomparable is a MeterProvider that cannot be a map key (a value type
// holding a slice), which WithTelemetry accepts like any other.
type uncomparable struct {
	metric.MeterProvider
	_ []int
}

// A MeterProvider that cannot be a map key still gets one set of
// gauges for all its clients (keyed by the meter it hands out): with a
// one-hour and a two-hour token held, time_to_expiry is the first to
// expire, not whichever client's callback ran last.
func TestGaugesOfTwoClientsWithAnUncomparableProvider(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	meters := uncomparable{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))}
	for _, life := range []time.Duration{time.Hour, 2 * time.Hour} {
		f := newFixture(t, fixtureOptions{token: []testserver.TokenOption{testserver.WithLifetime(life)}})
		f.admin.SetRequireAuth(true)
		c := dial(t, f.config(), grpcauth.WithTelemetry(meters, nil))
		_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
		require.NoError(t, err)
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	ttl := gauges(t, rm, "grpcauth.token.time_to_expiry")
	require.Contains(t, ttl, "grpcauth.flow=ClientSecret")
	assert.LessOrEqual(t, ttl["grpcauth.flow=ClientSecret"], time.Hour.Seconds(), "the first of the two tokens to expire has at most an hour left")
}
