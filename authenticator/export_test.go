package authenticator

import (
	"context"
	"log/slog"
	"time"
)

// WithClock sets the clock that decides when a token expires (and when a
// rejection backoff or a retry pause ends), so that tests need not wait.
// Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithTransientBackoff sets the first wait before a token request that
// failed transiently is sent again (default 200 ms), so that tests which
// meet many such failures, such as the fuzz target, need not wait.
func WithTransientBackoff(d time.Duration) Option {
	return func(o *options) { o.transientBackoff = d }
}

// The package's defaults, for the tests that check them.
const (
	DefaultRedirectURI   = defaultRedirectURI
	DefaultLoginTimeout  = defaultLoginTimeout
	DefaultDeviceTimeout = defaultDeviceTimeout
)

// ErrNoToken is what the error of Credential wraps before a lazy Keeper's
// first token.
var ErrNoToken = errNoToken

// FlowTimeout returns the flow's own bound of a Token call (a login that
// waits for a person), and whether it has one.
func FlowTimeout(f Flow) (time.Duration, bool) {
	tf, ok := f.(timeoutFlow)
	if !ok {
		return 0, false
	}
	return tf.flowTimeout(), true
}

// FlowClientID returns the client id the flow authenticates as, and whether
// it is a flow that may name one.
func FlowClientID(f Flow) (string, bool) {
	cf, ok := f.(clientIDFlow)
	if !ok {
		return "", false
	}
	return cf.flowClientID(), true
}

// ContextWithLogger puts l in ctx where a Keeper puts its logger for the
// flows of this package, so that a test can run a flow alone and see what
// it logs.
func ContextWithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}
