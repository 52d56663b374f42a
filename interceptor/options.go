package interceptor

import (
	"log/slog"
	"slices"

	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// DefaultMaxReplay is how many sent messages a client- or bidi-streaming
// call keeps for a replay when no WithMaxReplay option is given.
const DefaultMaxReplay = 64

// Option configures the interceptors.
type Option func(*options)

type options struct {
	insecure     bool
	refreshCodes []codes.Code
	skip         map[string]bool
	maxReplay    int
	logger       *slog.Logger
	onRetry      func(method string, code codes.Code)
}

func newOptions(opts []Option) *options {
	o := &options{
		refreshCodes: []codes.Code{codes.Unauthenticated},
		skip: map[string]bool{
			authmetapb.GetOAuth2MetadataMethod:     true,
			authmetapb.GetPublicClientConfigMethod: true,
		},
		maxReplay: DefaultMaxReplay,
		logger:    slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// WithInsecure lets the interceptors send tokens over a transport without
// transport security (Flyte's insecure: true, for plaintext development
// clusters). Default: a token goes only over TLS, ALTS or local
// credentials, decided per call for the transport it uses; on any other
// transport the call goes out without it.
func WithInsecure() Option {
	return func(o *options) { o.insecure = true }
}

// WithRefreshCodes sets the status codes that make the interceptors refresh
// the credentials and retry the call once. Default: codes.Unauthenticated.
// flytekit also refreshes on codes.Unknown; pass both to do the same.
func WithRefreshCodes(c ...codes.Code) Option {
	return func(o *options) { o.refreshCodes = slices.Clone(c) }
}

// WithSkipMethods adds full method names ("/package.Service/Method") that
// the interceptors pass through untouched: no token, no retry.
// AuthMetadataService's two RPCs are always skipped, so a config store that
// shares the connection never recurses.
func WithSkipMethods(methods ...string) Option {
	return func(o *options) {
		for _, m := range methods {
			o.skip[m] = true
		}
	}
}

// WithMaxReplay bounds how many sent messages a client- or bidi-streaming
// call keeps so it can replay them on a retry. A stream that has sent more,
// or more than 64 KiB on the wire (protobuf messages' encoded size; a
// message of another kind counts as past the bound), is not retried: its
// error is returned. 0 turns stream replay off (a stream is then retried
// only if it has sent nothing). Default: DefaultMaxReplay. A negative value
// keeps the default.
func WithMaxReplay(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.maxReplay = n
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
// the method and the code that caused it; f must be safe for concurrent use
// and quick. It is for metrics. Default: none.
func WithOnRetry(f func(method string, code codes.Code)) Option {
	return func(o *options) { o.onRetry = f }
}

func (o *options) refreshable(c codes.Code) bool {
	return slices.Contains(o.refreshCodes, c)
}
