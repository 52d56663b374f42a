package connectauth

import (
	"log/slog"
	"slices"

	"connectrpc.com/connect"

	"github.com/flyteauth/grpcauth/proto/authmeta2pb"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// Replay bounds used when no WithMaxReplay or WithMaxReplayBytes option is
// given.
const (
	// DefaultMaxReplay is how many sent messages a client- or
	// bidi-streaming call keeps for a replay.
	DefaultMaxReplay = 64
	// DefaultMaxReplayBytes is how many bytes of sent messages (their
	// protobuf size) a streaming call keeps for a replay.
	DefaultMaxReplayBytes = 4 << 20
)

// Option configures an Interceptor.
type Option func(*options)

type options struct {
	insecure       bool
	refreshCodes   []connect.Code
	skip           map[string]bool
	maxReplay      int
	maxReplayBytes int
	logger         *slog.Logger
	onRetry        func(procedure string, code connect.Code)
}

func newOptions(opts []Option) *options {
	o := &options{
		refreshCodes: []connect.Code{connect.CodeUnauthenticated},
		skip: map[string]bool{
			authmetapb.GetOAuth2MetadataMethod:      true,
			authmetapb.GetPublicClientConfigMethod:  true,
			authmeta2pb.GetOAuth2MetadataMethod:     true,
			authmeta2pb.GetPublicClientConfigMethod: true,
		},
		maxReplay:      DefaultMaxReplay,
		maxReplayBytes: DefaultMaxReplayBytes,
		logger:         slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// WithInsecure lets the interceptor send tokens over plain HTTP to any host
// (Flyte's insecure: true, for plaintext development clusters). Default: a
// token goes only to an https:// base URL, or http:// to localhost,
// 127.0.0.0/8 or ::1; other calls go out without it.
func WithInsecure() Option {
	return func(o *options) { o.insecure = true }
}

// WithRefreshCodes sets the codes that make the interceptor refresh the
// credentials and send the call again once. Default:
// connect.CodeUnauthenticated.
func WithRefreshCodes(c ...connect.Code) Option {
	return func(o *options) { o.refreshCodes = slices.Clone(c) }
}

// WithSkipProcedures adds procedures ("/package.Service/Method") that the
// interceptor passes through untouched: no token, no retry. The
// AuthMetadataService RPCs of Flyte 1 and Flyte 2 are always skipped.
func WithSkipProcedures(procedures ...string) Option {
	return func(o *options) {
		for _, p := range procedures {
			o.skip[p] = true
		}
	}
}

// WithMaxReplay bounds how many sent messages a client- or bidi-streaming
// call keeps so it can replay them on a retry. A stream that has sent more
// is not retried: its error is returned. 0 turns replay off (a stream is
// then retried only if it has sent nothing). Default: DefaultMaxReplay. A
// negative value keeps the default.
func WithMaxReplay(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.maxReplay = n
		}
	}
}

// WithMaxReplayBytes bounds the total protobuf size of the messages a
// streaming call keeps for a replay; past it the stream is not retried.
// Messages that are not protobuf messages count as past the bound. Default:
// DefaultMaxReplayBytes. A negative value keeps the default.
func WithMaxReplayBytes(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.maxReplayBytes = n
		}
	}
}

// WithLogger logs refreshes and retries at debug level, withheld tokens at
// warn level. Nothing logged carries a token. Default: nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithOnRetry calls f each time a call is sent again after a refresh, with
// the procedure and the code that caused it; f must be safe for concurrent
// use and quick. It is for metrics. Default: none.
func WithOnRetry(f func(procedure string, code connect.Code)) Option {
	return func(o *options) { o.onRetry = f }
}

func (o *options) refreshable(c connect.Code) bool {
	return slices.Contains(o.refreshCodes, c)
}
