// Package configstore resolves the OAuth2 client configuration that an
// authenticator needs: the token endpoint, scopes, audience and the metadata
// key under which a gRPC call carries its token.
//
// A ClientConfigStore hands out a ClientConfig. Static returns a fixed one,
// for deployments whose settings are known up front. Remote asks FlyteAdmin's
// AuthMetadataService for it over gRPC, the way flytekit's
// RemoteClientConfigStore and flyteidl's Go admin client do: both RPCs on
// first use, one shared fetch for concurrent first callers, the result cached
// and a failure never cached.
//
// The authenticator package reads a store when it first refreshes its
// credentials; explicit settings given to the authenticator win over what the
// store says.
package configstore
