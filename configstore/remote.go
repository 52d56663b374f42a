package configstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/internal/flight"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// DefaultFetchTimeout bounds the shared fetch of both RPCs when no
// WithFetchTimeout option is given.
const DefaultFetchTimeout = 10 * time.Second

// ErrInvalidMetadata is matched (errors.Is) by the error Remote returns when
// the server answered, but with a token endpoint that cannot be used.
var ErrInvalidMetadata = errors.New("invalid auth metadata")

// Remote is a ClientConfigStore that asks FlyteAdmin's AuthMetadataService
// for the configuration. It calls GetOAuth2Metadata and GetPublicClientConfig
// on first use, in parallel, and caches the result for the life of the
// Remote. Concurrent first callers share one fetch; a failed fetch is not
// cached, so the next call tries again.
//
// Its RPCs are anonymous: they carry no token. When the connection given to
// NewRemote also has the auth interceptors installed (the usual case: one
// connection to FlyteAdmin for everything), the interceptors must leave the
// two methods alone, or a refresh would ask the store, which would ask for a
// refresh. The interceptor package skips authmetarpc1.GetOAuth2MetadataMethod
// and authmetarpc1.GetPublicClientConfigMethod by default.
//
// Remote is safe for concurrent use.
type Remote struct {
	client  authmetarpc1.AuthMetadataServiceClient
	timeout time.Duration
	logger  *slog.Logger

	// skipMeta and skipPublic leave out one of the two RPCs.
	skipMeta, skipPublic bool
	// missingTokenEndpointOK is read by the Flyte 2 stores; see
	// AllowMissingTokenEndpoint.
	missingTokenEndpointOK bool

	cached atomic.Pointer[ClientConfig]
	group  flight.Group[*ClientConfig] // one fetch at a time
}

// RemoteOption configures a Remote.
type RemoteOption func(*Remote)

// WithFetchTimeout bounds the shared fetch of both RPCs. A caller's own
// context may end sooner; that caller then stops waiting, and the fetch goes
// on for the others. Default: DefaultFetchTimeout. A value <= 0 keeps the
// default.
func WithFetchTimeout(d time.Duration) RemoteOption {
	return func(r *Remote) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// WithLogger makes Remote log its fetches at debug level and failures at
// warn level. Default: nothing is logged.
func WithLogger(l *slog.Logger) RemoteOption {
	return func(r *Remote) {
		if l != nil {
			r.logger = l
		}
	}
}

// WithoutOAuth2Metadata leaves GetOAuth2Metadata out, for a caller that
// names the token endpoint itself (Flyte's tokenUrl) and needs no other
// endpoint: the answer's endpoints are then empty. Default: both RPCs.
func WithoutOAuth2Metadata() RemoteOption {
	return func(r *Remote) { r.skipMeta = true }
}

// WithoutPublicClientConfig leaves GetPublicClientConfig out, for a caller
// that names the scopes, the header key and the audience itself: the
// answer's client id, redirect URI, scopes, header key and audience are then
// empty. Default: both RPCs.
func WithoutPublicClientConfig() RemoteOption {
	return func(r *Remote) { r.skipPublic = true }
}

// NewRemote returns a store that reads the configuration from the
// AuthMetadataService served on cc. It does no I/O; the first
// GetClientConfig does.
func NewRemote(cc grpc.ClientConnInterface, opts ...RemoteOption) (*Remote, error) {
	if cc == nil {
		return nil, errors.New("configstore: NewRemote: connection is nil")
	}
	r := &Remote{
		client:  authmetarpc1.NewAuthMetadataServiceClient(cc),
		timeout: DefaultFetchTimeout,
		logger:  slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	if r.skipMeta && r.skipPublic {
		return nil, errors.New("configstore: NewRemote: WithoutOAuth2Metadata and WithoutPublicClientConfig leave nothing to ask: use NewStatic")
	}
	return r, nil
}

// String describes the store without walking its internals, which hold
// locks and a connection.
func (r *Remote) String() string {
	if r.cached.Load() != nil {
		return "configstore.Remote{cached}"
	}
	return "configstore.Remote{not fetched yet}"
}

// GoString is String, for %#v.
func (r *Remote) GoString() string { return r.String() }

// GetClientConfig returns the cached configuration, fetching it first if no
// fetch has succeeded yet. It returns when the fetch ends or ctx is done,
// whichever comes first. Errors name the RPC that failed and keep its gRPC
// status code (status.Code reports it).
func (r *Remote) GetClientConfig(ctx context.Context) (*ClientConfig, error) {
	if c := r.cached.Load(); c != nil {
		return c.Clone(), nil
	}
	c, err := r.group.Do(ctx, nil, r.timeout, func(fctx context.Context) (*ClientConfig, error) {
		if c := r.cached.Load(); c != nil {
			return c, nil
		}
		c, err := r.fetch(fctx)
		if err != nil {
			r.logger.Warn("configstore: fetching auth metadata failed", "error", err)
			return nil, err
		}
		r.cached.Store(c)
		return c, nil
	})
	if err != nil {
		if errors.Is(err, flight.ErrStoppedWaiting) {
			return nil, fmt.Errorf("configstore: waiting for auth metadata: %w", context.Cause(ctx))
		}
		return nil, err
	}
	return c.Clone(), nil
}

// anonymous returns ctx without any outgoing gRPC metadata, for the
// AuthMetadataService calls: they are anonymous, and the fetch runs on a
// context that keeps its first caller's values (flight.Group), so an
// authorization or tenant header that caller set with
// metadata.NewOutgoingContext or AppendToOutgoingContext would otherwise
// ride along. Its other values (a trace span, say) are kept.
func anonymous(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.MD{})
}

// fetch calls both RPCs in parallel and maps their answers. They carry
// none of the caller's outgoing metadata.
func (r *Remote) fetch(ctx context.Context) (*ClientConfig, error) {
	r.logger.Debug("configstore: fetching auth metadata")
	ctx = anonymous(ctx)
	var (
		meta *authmetapb.OAuth2MetadataResponse
		pub  *authmetapb.PublicClientAuthConfigResponse
	)
	g, gctx := errgroup.WithContext(ctx)
	if !r.skipMeta {
		g.Go(func() error {
			var err error
			meta, err = r.client.GetOAuth2Metadata(gctx, &authmetapb.OAuth2MetadataRequest{})
			if err != nil {
				return fmt.Errorf("configstore: GetOAuth2Metadata: %w", err)
			}
			return nil
		})
	}
	if !r.skipPublic {
		g.Go(func() error {
			var err error
			pub, err = r.client.GetPublicClientConfig(gctx, &authmetapb.PublicClientAuthConfigRequest{})
			if err != nil {
				return fmt.Errorf("configstore: GetPublicClientConfig: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if !r.skipMeta {
		if err := checkEndpoint(meta.GetTokenEndpoint()); err != nil {
			return nil, fmt.Errorf("configstore: GetOAuth2Metadata: token_endpoint %w", err)
		}
	}
	return &ClientConfig{
		TokenEndpoint:               meta.GetTokenEndpoint(),
		AuthorizationEndpoint:       meta.GetAuthorizationEndpoint(),
		DeviceAuthorizationEndpoint: meta.GetDeviceAuthorizationEndpoint(),
		RedirectURI:                 pub.GetRedirectUri(),
		ClientID:                    pub.GetClientId(),
		Scopes:                      pub.GetScopes(),
		HeaderKey:                   pub.GetAuthorizationMetadataKey(),
		Audience:                    pub.GetAudience(),
		ServiceHTTPEndpoint:         pub.GetServiceHttpEndpoint(),
	}, nil
}

// checkEndpoint reports whether s is an absolute http or https URL. Its
// error reads after "token_endpoint ".
func checkEndpoint(s string) error {
	if s == "" {
		return fmt.Errorf("is empty: %w", ErrInvalidMetadata)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL: %w", redact.URL(s), ErrInvalidMetadata)
	}
	return nil
}
