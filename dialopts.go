package grpcauth

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/keepalive"
)

// Connection defaults, Flyte's where Flyte has one.
const (
	// defaultMaxMessageSizeBytes bounds a response message: 64 MiB.
	// gRPC's own limit is 4 MiB, which FlyteAdmin's answers (such as
	// GetExecutionData) exceed; flyteidl's Go client keeps gRPC's limit
	// unless maxMessageSizeBytes is set, flytekit raises it to 20 MiB,
	// and FlyteAdmin itself sends messages of any size. 64 MiB lets
	// answers beyond flytekit's limit through while bounding memory.
	defaultMaxMessageSizeBytes = 64 << 20
	// defaultMaxRetries is flyteidl's maxRetries: a call that failed with
	// Unavailable is sent up to 4 more times.
	defaultMaxRetries = 4
	// defaultMaxBackoffDelay is flyteidl's maxBackoffDelay: the longest
	// wait between two attempts of a call, and between two connection
	// attempts.
	defaultMaxBackoffDelay = 8 * time.Second
	// defaultKeepaliveTime is the keepalive interval: a ping after 5 min
	// without activity while a call is open, so that a connection silently
	// dropped by a load balancer or NAT under a long stream is noticed.
	// flytekit pings every 30 s, also on idle connections; a gRPC-Go server
	// with its default enforcement policy, as FlyteAdmin runs, allows one
	// ping per 5 min and only with a call open, and answers more with
	// GOAWAY too_many_pings, closing the connection.
	defaultKeepaliveTime = 5 * time.Minute
	// defaultKeepaliveTimeout is how long a ping may go unanswered before
	// the connection is closed.
	defaultKeepaliveTimeout = 20 * time.Second
)

// maxRetries bounds maxRetries: more retries of an Unavailable call only
// hide an outage (flyteidl's default is 4).
const maxRetries = 100

// retryInitialBackoff is the wait before the first retry; later ones
// double it up to MaxBackoffDelay, each randomized by gRPC.
const retryInitialBackoff = 100 * time.Millisecond

// minConnectTimeout is gRPC's default, which WithConnectParams would
// otherwise set to zero.
const minConnectTimeout = 20 * time.Second

// modulePath is this module's path, as runtime/debug reports it.
const modulePath = "github.com/flyteauth/grpcauth"

// userAgent is the user-agent New sends, "grpcauth/<version>", the version
// of this module in the binary ("devel" when built from a work tree or
// unknown). gRPC appends its own "grpc-go/<version>".
var userAgent = sync.OnceValue(func() string {
	return "grpcauth/" + moduleVersion(debug.ReadBuildInfo())
})

// moduleVersion finds this module's version in the build information.
func moduleVersion(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "devel"
	}
	v := ""
	if info.Main.Path == modulePath {
		v = info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == modulePath {
			v = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				v = d.Replace.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return v
}

// DialOptions returns the connection options New applies before the
// caller's (which win): the receive limit (MaxMessageSizeBytes), keepalive
// (defaultKeepaliveTime, defaultKeepaliveTimeout, pings only while a call
// is open), connection backoff up to MaxBackoffDelay, the
// user-agent "grpcauth/<version>", and a default service config: DefaultServiceConfig
// when set, else a retry policy for Unavailable only, with MaxRetries
// retries waiting up to MaxBackoffDelay. It does not include transport
// credentials (see TransportCredentials). It fails on a negative size or
// duration or a DefaultServiceConfig that is not a JSON object. It is safe
// for concurrent use with other reads of c.
func (c Config) DialOptions() ([]grpc.DialOption, error) {
	size := c.MaxMessageSizeBytes
	switch {
	case size < 0 || size > math.MaxInt32:
		return nil, fmt.Errorf("grpcauth: maxMessageSizeBytes is %d: want at least 0 and at most %d", size, math.MaxInt32)
	case size == 0:
		size = defaultMaxMessageSizeBytes
	}
	delay := c.MaxBackoffDelay
	switch {
	case delay < 0:
		return nil, fmt.Errorf("grpcauth: maxBackoffDelay is %s: want at least 0", delay)
	case delay == 0:
		delay = defaultMaxBackoffDelay
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = delay
	bo.BaseDelay = min(bo.BaseDelay, delay)
	opts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(size)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                defaultKeepaliveTime,
			Timeout:             defaultKeepaliveTimeout,
			PermitWithoutStream: false,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: minConnectTimeout}),
		grpc.WithUserAgent(userAgent()),
	}
	sc, attempts, err := c.serviceConfig(delay)
	if err != nil {
		return nil, err
	}
	if sc != "" {
		opts = append(opts, grpc.WithDefaultServiceConfig(sc))
	}
	if attempts > 5 {
		// gRPC caps attempts at 5 unless told otherwise.
		opts = append(opts, grpc.WithMaxCallAttempts(attempts))
	}
	return opts, nil
}

// serviceConfig returns the default service config in JSON and the
// attempts per call it allows ("" and 0 for none).
func (c Config) serviceConfig(maxBackoff time.Duration) (sc string, attempts int, err error) {
	if c.DefaultServiceConfig != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(c.DefaultServiceConfig), &obj); err != nil {
			return "", 0, fmt.Errorf("grpcauth: defaultServiceConfig is not a JSON object: %w", err)
		}
		return c.DefaultServiceConfig, 0, nil
	}
	retries := c.MaxRetries
	switch {
	case retries < 0:
		return "", 0, nil
	case retries == 0:
		retries = defaultMaxRetries
	case retries > maxRetries:
		return "", 0, fmt.Errorf("grpcauth: maxRetries is %d: want at most %d", retries, maxRetries)
	}
	attempts = retries + 1
	policy := map[string]any{
		"methodConfig": []any{map[string]any{
			// An empty name is the default for every method.
			"name": []any{map[string]any{}},
			"retryPolicy": map[string]any{
				"maxAttempts":       attempts,
				"initialBackoff":    seconds(min(retryInitialBackoff, maxBackoff)),
				"maxBackoff":        seconds(maxBackoff),
				"backoffMultiplier": 2,
				// Unauthenticated is the interceptors' to retry, once,
				// with a fresh token: never here.
				"retryableStatusCodes": []string{"UNAVAILABLE"},
			},
		}},
	}
	b, err := json.Marshal(policy)
	if err != nil {
		return "", 0, fmt.Errorf("grpcauth: building the service config: %w", err)
	}
	return string(b), attempts, nil
}

// seconds writes d as a service config duration, "0.1s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
