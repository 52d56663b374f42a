package interceptor

import (
	"log/slog"
	"slices"

	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/internal/retry"
)

// Option configures the interceptors of this package and of package
// connectauth: one set of options for gRPC and connect-go.
type Option func(*retry.Options)

// WithInsecure lets the interceptors send tokens over a transport without
// transport security (Flyte's insecure: true, for plaintext development
// clusters). Default: a token goes only over TLS, ALTS or local
// credentials, decided per call for the transport it uses (for connect-go:
// https, or http to a loopback host); on any other transport the call goes
// out without it.
func WithInsecure() Option {
	return func(o *retry.Options) { o.Insecure = true }
}

// WithRefreshCodes sets the status codes that make the interceptors refresh
// the credentials and retry the call once. Default: codes.Unauthenticated.
// flytekit also refreshes on codes.Unknown; pass both to do the same.
// connect-go's codes have the same numbers (connect.Code(c)).
func WithRefreshCodes(c ...codes.Code) Option {
	return func(o *retry.Options) { o.RefreshCodes = slices.Clone(c) }
}

// WithSkipMethods adds full method names ("/package.Service/Method", a
// connect-go procedure) that the interceptors pass through untouched: no
// token, no retry. The AuthMetadataService RPCs of Flyte 1 and Flyte 2 are
// always skipped, so a config store that shares the connection never
// recurses.
func WithSkipMethods(methods ...string) Option {
	return func(o *retry.Options) {
		for _, m := range methods {
			o.Skip[m] = true
		}
	}
}

// WithMaxReplay bounds how many sent messages a client- or bidi-streaming
// call keeps so it can replay them on a retry. A stream that has sent more,
// or more than 64 KiB (protobuf messages' encoded size plus gRPC's 5-byte
// prefix each; a message of another kind counts as past the bound), is not
// retried: its error is returned. 0 turns stream replay off (a stream is
// then retried only if it has sent nothing). Default: 64. A
// negative value keeps the default.
func WithMaxReplay(n int) Option {
	return func(o *retry.Options) {
		if n >= 0 {
			o.MaxReplay = n
		}
	}
}

// WithLogger logs refreshes and retries at debug level, withheld tokens at
// warn level. Nothing logged carries a token. Default: nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *retry.Options) {
		if l != nil {
			o.Logger = l
		}
	}
}

// WithOnRetry calls f each time a call is sent again after a refresh, with
// the method and the code that caused it; f must be safe for concurrent use
// and quick. It is for metrics. Default: none.
func WithOnRetry(f func(method string, code codes.Code)) Option {
	return func(o *retry.Options) { o.OnRetry = f }
}
