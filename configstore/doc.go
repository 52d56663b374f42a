// Package configstore resolves the OAuth2 client configuration that an
// authenticator needs: the token endpoint and the other endpoints, the
// public client id, scopes, audience and the metadata key under which a
// call carries its token.
//
// A ClientConfigStore hands out a ClientConfig. NewStatic returns one that
// hands out a fixed configuration, for deployments whose settings are
// known up front. NewRemote asks the deployment's AuthMetadataService over
// gRPC: Flyte 2's flyteidl2.auth.AuthMetadataService, else Flyte 1's
// flyteidl.service.AuthMetadataService (WithService chooses), the way
// flytekit's RemoteClientConfigStore and flyteidl's Go admin client do.
// NewDiscovery reads an RFC 8414 authorization server metadata document
// (or OpenID Connect's) over HTTPS. The remote stores fetch on first use,
// share one fetch among concurrent first callers, cache the result and
// never cache a failure; Option configures them, and a Service names a
// generation of AuthMetadataService: ServiceOf says which one a store of
// NewRemote found the server to serve.
//
// ErrNoIdentityProvider reports a Flyte 2 deployment without an identity
// provider; ErrInvalidMetadata an answer that cannot be used.
//
// The authenticator package reads a store when it first needs a token;
// explicit settings given to the authenticator win over what the store
// says. grpcauth.New asks a store only for what the Flyte config does not
// name.
package configstore
