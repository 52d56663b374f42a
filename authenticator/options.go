package authenticator

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults of the optional settings.
const (
	// DefaultHeaderKey is the metadata key used when neither WithHeaderKey
	// nor the config store names one.
	DefaultHeaderKey = "authorization"
	// DefaultTokenTimeout bounds one token request, config store lookup
	// included.
	DefaultTokenTimeout = 30 * time.Second
	// DefaultMaxRefreshMargin caps the default refresh margin, which is a
	// fifth of the token's lifetime: a one-hour token is refreshed 10 s
	// before it expires, a 10 s token 2 s before.
	DefaultMaxRefreshMargin = 10 * time.Second
)

// Option configures a Keeper.
type Option func(*options)

type options struct {
	headerKey  string
	headerSet  bool // WithHeaderKey was given, even with a blank key
	scopes     []string
	scopesSet  bool
	audience   string
	tokenURL   string
	proxyURL   string
	caCertFile string
	skipVerify bool
	httpClient *http.Client
	secret     SecretSource
	logger     *slog.Logger
	margin     time.Duration
	timeout    time.Duration
	now        func() time.Time
	retryPause time.Duration
	cache      TokenCache
	allowHTTP  bool
	lazy       bool
	// minCachedLife is how long a cached token must still be valid to be
	// used without a request.
	minCachedLife time.Duration
}

func defaultOptions() options {
	return options{
		logger:        slog.New(slog.DiscardHandler),
		timeout:       DefaultTokenTimeout,
		now:           time.Now,
		retryPause:    time.Second,
		minCachedLife: 30 * time.Second,
	}
}

// WithHeaderKey sets the gRPC metadata key that carries the token. It wins
// over the key the config store advertises (flytekit lets the server's key
// win; we do not). Default: the store's key, else DefaultHeaderKey.
func WithHeaderKey(key string) Option {
	return func(o *options) {
		o.headerKey = strings.ToLower(strings.TrimSpace(key))
		o.headerSet = true
	}
}

// WithScopes sets the scopes to request. They win over the store's scopes.
// Default: the store's scopes. WithScopes() with no argument requests no
// scope at all, whatever the store says.
func WithScopes(scopes ...string) Option {
	return func(o *options) {
		o.scopes = append([]string(nil), scopes...)
		o.scopesSet = true
	}
}

// WithAudience sets the audience to request the token for, sent as the
// "audience" form parameter. It wins over the store's audience. Default: the
// store's audience, else none.
func WithAudience(audience string) Option {
	return func(o *options) { o.audience = audience }
}

// WithTokenURL sets the token endpoint, winning over the store's (Flyte's
// tokenUrl). Default: the store's token endpoint.
func WithTokenURL(tokenURL string) Option {
	return func(o *options) { o.tokenURL = tokenURL }
}

// WithHTTPProxyURL sends token requests through the HTTP proxy at proxyURL,
// such as "http://proxy.example:3128". Default: the proxy named by the
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY environment variables.
func WithHTTPProxyURL(proxyURL string) Option {
	return func(o *options) { o.proxyURL = proxyURL }
}

// WithCACertFile trusts the PEM certificates in path, besides the system's,
// when verifying the token endpoint's TLS certificate.
func WithCACertFile(path string) Option {
	return func(o *options) { o.caCertFile = path }
}

// WithInsecureSkipVerify turns off verification of the token endpoint's TLS
// certificate. Use it only against a development cluster.
func WithInsecureSkipVerify() Option {
	return func(o *options) { o.skipVerify = true }
}

// WithHTTPClient makes token requests with c, used as given. It cannot be
// combined with WithHTTPProxyURL, WithCACertFile or WithInsecureSkipVerify:
// configure c's transport instead. Default: a client built once from those
// options, which does not follow redirects (so client credentials never
// reach another host).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.httpClient = c }
}

// WithSecretSource reads the client secret from s at every token request,
// instead of using the clientSecret argument of the constructor, which may
// then be empty. See SecretFromFile and SecretFromEnv.
func WithSecretSource(s SecretSource) Option {
	return func(o *options) { o.secret = s }
}

// WithLogger logs token requests at debug level and failures at warn
// level. Nothing logged carries a secret or a token. Default: nothing is
// logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithRefreshMargin starts a background refresh d before the token expires.
// The margin is capped at half the token's lifetime. Default: a fifth of the
// lifetime, at most DefaultMaxRefreshMargin. A value <= 0 keeps the default.
func WithRefreshMargin(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.margin = d
		}
	}
}

// WithTokenTimeout bounds one token request, config store lookup included.
// Default: DefaultTokenTimeout. A value <= 0 keeps the default.
func WithTokenTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithClock sets the clock that decides when a token expires. It is for
// tests. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithCache keeps tokens in c across processes: the Keeper reads it before
// its first token request (a valid token is used with no request; an
// expired one hands its refresh token to the flow) and writes every token
// it gets. See package tokencache. Default: tokens live in memory only.
func WithCache(c TokenCache) Option {
	return func(o *options) { o.cache = c }
}

// WithAllowHTTP lets credentials go to a plain http:// token endpoint on a
// host that is not loopback (Flyte's insecure: true, for development
// clusters). Default: such an endpoint is refused with ErrInsecureEndpoint,
// since the client secret or refresh token would travel in cleartext;
// https:// and http:// on loopback are always allowed.
func WithAllowHTTP() Option {
	return func(o *options) { o.allowHTTP = true }
}

// WithLazyStart sends calls without a token until a server rejects one:
// only then does the Keeper get a token (from its cache, else its flow).
// It suits an interactive flow chosen by default rather than by the user,
// so that a server that asks for no authentication never opens a browser.
// Default: the first call waits for a token and carries it.
func WithLazyStart() Option {
	return func(o *options) { o.lazy = true }
}
