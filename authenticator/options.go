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
	httpClient *http.Client
	logger     *slog.Logger
	margin     time.Duration
	timeout    time.Duration
	now        func() time.Time
	retryPause time.Duration
	// transientBackoff is the first wait before a token request that
	// failed transiently is sent again; it doubles (see fetch.go).
	transientBackoff time.Duration
	cache            TokenCache
	allowHTTP        bool
	lazy             bool
	// minCachedLife is how long a cached token must still be valid to be
	// used without a request.
	minCachedLife time.Duration
}

func defaultOptions() options {
	return options{
		logger:     slog.New(slog.DiscardHandler),
		timeout:    DefaultTokenTimeout,
		now:        time.Now,
		retryPause: time.Second,
		// A proxy's 502 or a refused connection usually passes within a
		// few hundred milliseconds.
		transientBackoff: 200 * time.Millisecond,
		minCachedLife:    30 * time.Second,
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

// WithHTTPClient makes token requests with c, used as given: its
// transport says how the token endpoint is trusted and reached (TLS roots,
// an HTTP proxy, a proxy credential). grpcauth.New builds one from the
// Flyte config. Default: a client with http.DefaultTransport's settings,
// which does not follow redirects (so client credentials never reach
// another host).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.httpClient = c }
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
// lifetime, at most 10 s (a one-hour token is refreshed 10 s before it
// expires, a 10 s token 2 s before). A value <= 0 keeps the default.
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

// WithCache keeps tokens in c across processes: the Keeper reads it before
// its first token request (a valid token is used with no request; an
// expired one hands its refresh token to the flow) and writes every token
// it gets. See package tokencache. Default: tokens live in memory only.
func WithCache(c TokenCache) Option {
	return func(o *options) { o.cache = c }
}

// WithInsecure lets credentials go to a plain http:// token endpoint on a
// host that is not loopback (Flyte's insecure: true, for development
// clusters). Default: such an endpoint is refused with ErrInsecureEndpoint,
// since the client secret or refresh token would travel in cleartext;
// https:// and http:// on loopback are always allowed.
func WithInsecure() Option {
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
