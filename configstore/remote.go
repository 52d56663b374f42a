package configstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// ErrInvalidMetadata is matched (errors.Is) by the error Remote returns when
// the server answered, but with a token endpoint that cannot be used.
var ErrInvalidMetadata = errors.New("invalid auth metadata")

// remote is the store of Flyte 1's AuthMetadataService (FlyteAdmin's).
type remote struct {
	client authmetarpc1.AuthMetadataServiceClient
	// skipMeta and skipPublic leave out one of the two RPCs.
	skipMeta, skipPublic bool
	cache                fetchCache
}

// NewRemote returns a store that asks the deployment's AuthMetadataService
// on cc for the configuration, the way flytekit's RemoteClientConfigStore
// and flyteidl's Go admin client do: both RPCs on first use, in parallel;
// one shared fetch for concurrent first callers, bounded by its own timeout
// (WithTimeout); the result cached for the life of the store; a failure
// never cached, so the next caller tries again. Which service it asks is
// WithService's: by default Flyte 2's flyteidl2.auth.AuthMetadataService,
// and Flyte 1's flyteidl.service.AuthMetadataService when the server
// serves only that one (remembered once the server said so).
//
// Its RPCs are anonymous: they carry no token and none of the caller's
// outgoing metadata. When cc also has the auth interceptors installed (one
// connection for everything, as grpcauth.New builds it), the interceptors
// leave the two methods alone. Errors name the RPC that failed and keep its
// gRPC status code; a Flyte 2 server without an identity provider fails
// with ErrNoIdentityProvider (see AllowMissingTokenEndpoint). It does no
// I/O; the first GetClientConfig does.
func NewRemote(cc grpc.ClientConnInterface, opts ...Option) (ClientConfigStore, error) {
	if cc == nil {
		return nil, errors.New("configstore: NewRemote: connection is nil")
	}
	o := newOptions(opts)
	if o.skipMeta && o.skipPublic {
		return nil, errors.New("configstore: NewRemote: WithoutOAuth2Metadata and WithoutPublicClientConfig leave nothing to ask: use NewStatic")
	}
	switch o.service {
	case ServiceAuto:
		return opaque{newAutoRemote(cc, o)}, nil
	case ServiceFlyte1:
		return opaque{newRemote(cc, o)}, nil
	case ServiceFlyte2:
		return opaque{newFlyte2Remote(cc, o)}, nil
	}
	return nil, fmt.Errorf("configstore: NewRemote: unknown service %v", o.service)
}

func newRemote(cc grpc.ClientConnInterface, o *options) *remote {
	return &remote{
		client:     authmetarpc1.NewAuthMetadataServiceClient(cc),
		skipMeta:   o.skipMeta,
		skipPublic: o.skipPublic,
		cache:      fetchCache{timeout: o.timeout, logger: o.logger, what: "auth metadata"},
	}
}

// get returns the cached configuration, fetching it first if no
// fetch has succeeded yet. It returns when the fetch ends or ctx is done,
// whichever comes first.
func (r *remote) get(ctx context.Context) (*ClientConfig, error) {
	return r.cache.get(ctx, r.fetch)
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
func (r *remote) fetch(ctx context.Context) (*ClientConfig, error) {
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
		Issuer:                      meta.GetIssuer(),
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
