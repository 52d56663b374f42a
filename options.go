package grpcauth

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/connectmeta"
)

// Option configures New, NewClient and connectauth.New. Options compose:
// each adds to what the ones before it set, and a later one wins where two
// set the same thing.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// options are what the Options gave.
type options struct {
	dial    []grpc.DialOption
	iopts   []interceptor.Option
	aopts   []authenticator.Option
	store   configstore.ClientConfigStore
	service configstore.Service
	cache   authenticator.TokenCache
	logger  *slog.Logger
	timeout time.Duration
	prompt  authenticator.Prompter
	// metaVia wraps the connection the config store asks (connectauth's
	// Connect-protocol metadata requests).
	metaVia func(grpc.ClientConnInterface) grpc.ClientConnInterface
	meters  metric.MeterProvider
	tracers trace.TracerProvider
}

func init() {
	connectmeta.Via = func(wrap func(grpc.ClientConnInterface) grpc.ClientConnInterface) any {
		return optionFunc(func(o *options) { o.metaVia = wrap })
	}
}

func newOptions(opts []Option) *options {
	o := &options{service: configstore.ServiceAuto}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
	return o
}

// WithDialOptions adds gRPC dial options after New's own (Config.DialOptions
// and the interceptors), so they win. For connectauth.New they apply to
// the connection of the metadata RPCs.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(o *options) { o.dial = append(o.dial, opts...) })
}

// WithInterceptorOptions passes opts to the interceptors, after the ones
// from the Config (interceptor.WithInsecure for insecure: true), so they
// win: for example interceptor.WithOnRetry.
func WithInterceptorOptions(opts ...interceptor.Option) Option {
	return optionFunc(func(o *options) { o.iopts = append(o.iopts, opts...) })
}

// WithAuthenticatorOptions passes opts to the Keeper of the flow, after the
// ones from the Config, so they win: for example
// authenticator.WithRefreshMargin. The proxy keeper of proxyCommand does
// not get them; WithTokenTimeout and WithLogger reach every keeper.
func WithAuthenticatorOptions(opts ...authenticator.Option) Option {
	return optionFunc(func(o *options) { o.aopts = append(o.aopts, opts...) })
}

// WithConfigStore says where the token endpoint and the rest of the client
// configuration come from, instead of the deployment's AuthMetadataService:
// for example a configstore.Discovery of its identity provider. What the
// Config names still wins over it.
func WithConfigStore(s configstore.ClientConfigStore) Option {
	return optionFunc(func(o *options) { o.store = s })
}

// WithTokenCache keeps the tokens in c, shared by the user's processes:
// the interactive flows' (Pkce, DeviceFlow), and, only when this option is
// given, client credentials' too, so that a short-lived process (a CLI
// run, a cron job) makes one token request per token lifetime rather than
// one per run; those are kept per token endpoint, scopes and audience, and
// only while their lifetime is known. Default: the interactive flows keep
// theirs in a tokencache.File in the user cache directory; the others keep
// theirs in memory only.
func WithTokenCache(c authenticator.TokenCache) Option {
	return optionFunc(func(o *options) { o.cache = c })
}

// WithLogger logs what every part does (token requests, refreshes,
// retries, metadata fetches) to l; nothing logged carries a secret or a
// token. Default: nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = l })
}

// WithTelemetry reports what authentication costs through OpenTelemetry:
// meters from mp, spans from tp (either may be nil; bring your own SDK).
// Metrics: grpcauth.token.requests and grpcauth.token.request.duration (s)
// per token request sent, by flow and outcome; grpcauth.calls.retried, the
// calls sent again with a new token (unless an interceptor.WithOnRetry of
// yours replaces that hook); and, read from the keeper's Stats when a
// reader collects, grpcauth.keeper.refreshes by cause,
// grpcauth.keeper.failures and grpcauth.keeper.cache_hits, summed over the
// clients of the provider (a closed client's counts stay: counters never go
// down); and the gauges grpcauth.token.age
// and grpcauth.token.time_to_expiry (s) of the tokens the open clients
// hold, by flow. Spans:
// grpcauth.token_request, around each token request, with the flow, the
// token endpoint's host and the HTTP status, never a URL's query, a header
// or a body; grpcauth.metadata_fetch, around each AuthMetadataService
// request of the config store. A call that needs no new token costs nothing more: the per-call
// path is not instrumented. Default: off.
func WithTelemetry(mp metric.MeterProvider, tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.meters, o.tracers = mp, tp })
}

// WithTokenTimeout bounds each token request of every keeper (the flow's,
// the proxy command's) and each fetch of the client configuration.
// Default: authenticator.DefaultTokenTimeout. An interactive login is
// bounded by its own timeout (pkceConfig.timeout, deviceFlowConfig.timeout).
func WithTokenTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.timeout = d })
}

// WithPrompter shows the interactive logins (Pkce, DeviceFlow) to a person
// through p. Default: loginui.Terminal, on standard error.
func WithPrompter(p authenticator.Prompter) Option {
	return optionFunc(func(o *options) { o.prompt = p })
}
