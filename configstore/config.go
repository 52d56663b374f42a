package configstore

import (
	"context"
	"slices"
)

// ClientConfig is what an OAuth2 client needs to know about the
// authorization server and the service it authenticates to. An empty string
// or a nil slice means "not set".
//
// A ClientConfig returned by a store is the caller's own copy.
type ClientConfig struct {
	// TokenEndpoint is the OAuth2 token endpoint URL (RFC 6749 §3.2).
	TokenEndpoint string
	// AuthorizationEndpoint is the OAuth2 authorization endpoint URL.
	AuthorizationEndpoint string
	// DeviceAuthorizationEndpoint is the device authorization endpoint URL
	// (RFC 8628).
	DeviceAuthorizationEndpoint string
	// RedirectURI is the redirect URI of the public client.
	RedirectURI string
	// ClientID is the id of the public client the server advertises.
	ClientID string
	// Scopes are the scopes to request.
	Scopes []string
	// HeaderKey is the gRPC metadata key that carries the token. Empty
	// means the server did not say; authenticators then use
	// "authorization".
	HeaderKey string
	// Audience is the audience to request the token for.
	Audience string
	// AudienceParam says how Audience is sent: "audience" (Auth0's
	// parameter, and flytekit's; the default when empty), "resource"
	// (RFC 8707's resource indicator, which standards-based servers
	// read), or "both".
	AudienceParam string
	// ServiceHTTPEndpoint is the HTTP endpoint of the service.
	ServiceHTTPEndpoint string
	// DataplaneDomain is the domain of a Flyte 2 deployment's data plane
	// (flyteidl2's dataplane_domain); empty from Flyte 1 and discovery.
	DataplaneDomain string
	// Issuer is the authorization server's issuer identifier, when the
	// metadata names it.
	Issuer string
	// RevocationEndpoint is the token revocation endpoint (RFC 7009),
	// when the metadata names one.
	RevocationEndpoint string
	// IssuerInAuthorizationResponse says the server puts its issuer in
	// every authorization response (RFC 9207's
	// authorization_response_iss_parameter_supported): a browser login
	// then refuses a response without it or with another.
	IssuerInAuthorizationResponse bool
}

// Clone returns a deep copy of c.
func (c *ClientConfig) Clone() *ClientConfig {
	if c == nil {
		return nil
	}
	out := *c
	out.Scopes = slices.Clone(c.Scopes)
	return &out
}

// ClientConfigStore hands out the client configuration. Implementations are
// safe for concurrent use.
type ClientConfigStore interface {
	// GetClientConfig returns the configuration, or an error that says why
	// it could not be had. The returned value is the caller's own copy.
	GetClientConfig(ctx context.Context) (*ClientConfig, error)
}

// opaque is what the constructors of this package return: a store whose
// fmt output is an address, not its internals (locks, atomics and a
// connection, which fmt would read racily while a fetch runs).
type opaque struct{ s source }

// source is a store of this package: the remote ones, discovery, static.
type source interface {
	get(ctx context.Context) (*ClientConfig, error)
}

// GetClientConfig returns the source's configuration.
func (o opaque) GetClientConfig(ctx context.Context) (*ClientConfig, error) {
	return o.s.get(ctx)
}
