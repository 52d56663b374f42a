package configstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/authmetarpc2"
	"github.com/flyteauth/grpcauth/proto/authmeta2pb"
)

// ErrNoIdentityProvider is matched (errors.Is) by the error a Flyte 2 store
// returns when the server's GetOAuth2Metadata answers Unimplemented, which
// Flyte 2 does when the deployment has no external identity provider
// configured: the server cannot say where the token endpoint is.
var ErrNoIdentityProvider = errors.New("the Flyte 2 server advertises no OAuth2 metadata (GetOAuth2Metadata answered Unimplemented: no external identity provider is configured)")

// errNotServed marks a Flyte 2 fetch whose server does not serve
// flyteidl2.auth.AuthMetadataService at all (GetPublicClientConfig answered
// Unimplemented); AutoRemote then asks Flyte 1's service.
var errNotServed = errors.New("flyteidl2.auth.AuthMetadataService is not served")

// noIdPHint tells the user what to set when the server has no IdP.
const noIdPHint = "set admin.tokenUrl (authenticator.WithTokenURL) to the identity provider's token endpoint, or read its metadata with configstore.NewDiscovery from its issuer URL"

// flyte2Remote is the store of Flyte 2's flyteidl2.auth.AuthMetadataService,
// over a grpc-go connection (Flyte 2's connect-go handlers answer the gRPC
// protocol). Its configuration has Flyte 1's fields plus DataplaneDomain.
type flyte2Remote struct {
	client            authmetarpc2.AuthMetadataServiceClient
	missingEndpointOK bool
	// skipMeta leaves GetOAuth2Metadata out. GetPublicClientConfig is
	// always asked: its answer tells a Flyte 2 server.
	skipMeta bool
	cache    fetchCache
}

func newFlyte2Remote(cc grpc.ClientConnInterface, o *options) *flyte2Remote {
	return &flyte2Remote{
		client:            authmetarpc2.NewAuthMetadataServiceClient(cc),
		missingEndpointOK: o.missingTokenEndpointOK,
		skipMeta:          o.skipMeta,
		cache:             fetchCache{timeout: o.timeout, logger: o.logger, what: "Flyte 2 auth metadata"},
	}
}

// get returns the cached configuration, fetching it first if no
// fetch has succeeded yet. It returns when the fetch ends or ctx is done,
// whichever comes first. Errors name the RPC that failed and keep its gRPC
// status code.
func (r *flyte2Remote) get(ctx context.Context) (*ClientConfig, error) {
	return r.cache.get(ctx, func(ctx context.Context) (*ClientConfig, error) {
		cfg, _, err := r.fetch(ctx)
		return cfg, err
	})
}

// fetch calls both RPCs in parallel and maps their answers; served reports
// that GetPublicClientConfig answered, so the server is a Flyte 2 one.
// Unlike Remote's fetch, neither call cancels the other:
// GetPublicClientConfig's answer tells "no IdP" (it succeeds) from "not
// Flyte 2" (Unimplemented too). Neither carries the caller's outgoing
// metadata.
func (r *flyte2Remote) fetch(ctx context.Context) (cfg *ClientConfig, served bool, _ error) {
	ctx = anonymous(ctx)
	var (
		meta            *authmeta2pb.GetOAuth2MetadataResponse
		pub             *authmeta2pb.GetPublicClientConfigResponse
		metaErr, pubErr error
		wg              sync.WaitGroup
	)
	if !r.skipMeta {
		wg.Go(func() { meta, metaErr = r.client.GetOAuth2Metadata(ctx, &authmeta2pb.GetOAuth2MetadataRequest{}) })
	}
	wg.Go(func() { pub, pubErr = r.client.GetPublicClientConfig(ctx, &authmeta2pb.GetPublicClientConfigRequest{}) })
	wg.Wait()
	if pubErr != nil {
		if status.Code(pubErr) == codes.Unimplemented {
			return nil, false, fmt.Errorf("configstore: %w: GetPublicClientConfig: %w", errNotServed, pubErr)
		}
		return nil, false, fmt.Errorf("configstore: flyteidl2 GetPublicClientConfig: %w", pubErr)
	}
	cfg = &ClientConfig{
		RedirectURI:         pub.GetRedirectUri(),
		ClientID:            pub.GetClientId(),
		Scopes:              pub.GetScopes(),
		HeaderKey:           pub.GetAuthorizationMetadataKey(),
		Audience:            pub.GetAudience(),
		ServiceHTTPEndpoint: pub.GetServiceHttpEndpoint(),
		DataplaneDomain:     pub.GetDataplaneDomain(),
	}
	switch {
	case r.skipMeta:
		return cfg, true, nil
	case status.Code(metaErr) == codes.Unimplemented:
		if r.missingEndpointOK {
			return cfg, true, nil
		}
		return nil, true, fmt.Errorf("configstore: flyteidl2 GetOAuth2Metadata: %w; %s (server said: %w)", ErrNoIdentityProvider, noIdPHint, metaErr)
	case metaErr != nil:
		return nil, true, fmt.Errorf("configstore: flyteidl2 GetOAuth2Metadata: %w", metaErr)
	}
	if err := checkEndpoint(meta.GetTokenEndpoint()); err != nil {
		return nil, true, fmt.Errorf("configstore: flyteidl2 GetOAuth2Metadata: token_endpoint %w", err)
	}
	cfg.TokenEndpoint = meta.GetTokenEndpoint()
	cfg.Issuer = meta.GetIssuer()
	cfg.AuthorizationEndpoint = meta.GetAuthorizationEndpoint()
	cfg.DeviceAuthorizationEndpoint = meta.GetDeviceAuthorizationEndpoint()
	return cfg, true, nil
}
