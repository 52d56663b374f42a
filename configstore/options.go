package configstore

import (
	"log/slog"
	"net/http"
	"time"
)

// defaultTimeout bounds one shared fetch of a store.
const defaultTimeout = 10 * time.Second

// Option configures NewRemote and NewDiscovery. Each option says which of
// the two it applies to; the other ignores it.
type Option func(*options)

type options struct {
	service    Service
	timeout    time.Duration
	logger     *slog.Logger
	skipMeta   bool // leave GetOAuth2Metadata out
	skipPublic bool // leave GetPublicClientConfig out
	// missingTokenEndpointOK: a Flyte 2 server without an identity
	// provider is no error.
	missingTokenEndpointOK bool
	client                 *http.Client // discovery's
	allowHTTP              bool         // discovery over plain http
	anyIssuer              bool         // discovery of a republished document
}

func newOptions(opts []Option) *options {
	o := &options{timeout: defaultTimeout, logger: slog.New(slog.DiscardHandler), client: http.DefaultClient}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// WithService chooses which AuthMetadataService NewRemote asks:
// ServiceAuto (the default: Flyte 2's, else Flyte 1's), ServiceFlyte1 or
// ServiceFlyte2.
func WithService(s Service) Option {
	return func(o *options) { o.service = s }
}

// WithTimeout bounds one shared fetch of a store (both RPCs, or both
// documents when the first is missing). A caller's own context may end
// sooner; that caller then stops waiting, and the fetch goes on for the
// others. Default: 10 s. A value <= 0 keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithLogger logs fetches at debug level and failures at warn level.
// Default: nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithoutOAuth2Metadata leaves GetOAuth2Metadata out of NewRemote's
// fetch, for a caller that names the token endpoint itself (Flyte's
// tokenUrl) and needs no other endpoint: the answer's endpoints are then
// empty. Default: both RPCs.
func WithoutOAuth2Metadata() Option {
	return func(o *options) { o.skipMeta = true }
}

// WithoutPublicClientConfig leaves GetPublicClientConfig out of
// NewRemote's fetch, for a caller that names the scopes, the header key
// and the audience itself: the answer's client id, redirect URI, scopes,
// header key and audience are then empty. Default: both RPCs.
func WithoutPublicClientConfig() Option {
	return func(o *options) { o.skipPublic = true }
}

// AllowMissingTokenEndpoint makes NewRemote's store, when it finds a Flyte
// 2 server that answers GetOAuth2Metadata with Unimplemented (no identity
// provider configured), return the public client configuration with an
// empty TokenEndpoint instead of failing with ErrNoIdentityProvider. It is
// for callers that name the token endpoint themselves (Flyte's tokenUrl).
// Default: such a server is an error.
func AllowMissingTokenEndpoint() Option {
	return func(o *options) { o.missingTokenEndpointOK = true }
}

// WithHTTPClient sets the HTTP client NewDiscovery fetches the document
// with (for a private CA or a proxy). Default: http.DefaultClient. Its
// redirects are checked against the same rule as the document's URL.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// WithInsecure lets NewDiscovery read the document over plain HTTP from a
// host that is not loopback, for development clusters. Default: HTTPS
// only, or HTTP to localhost, 127.0.0.0/8 or ::1.
func WithInsecure() Option {
	return func(o *options) { o.allowHTTP = true }
}

// WithRepublishedMetadata tells NewDiscovery that the document is a copy
// another server republishes, as a Flyte 2 server republishes its identity
// provider's at its own /.well-known/oauth-authorization-server: its issuer
// is the provider's, so it is not checked against the URL it was read
// from. Redirects to another origin are still refused. Default: the
// issuer must be the one the document was fetched for (RFC 8414 §3.3).
func WithRepublishedMetadata() Option {
	return func(o *options) { o.anyIssuer = true }
}
