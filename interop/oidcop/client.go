package main

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client is a registered OAuth2 client: either a public native client
// that uses the device grant (a CLI such as flytectl), or a confidential
// resource server that may only introspect (the service).
type client struct {
	id             string
	secret         string // "" for a public client
	resourceServer bool
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return nil }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) LoginURL(string) string           { return "" }
func (c *client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer // opaque: the service must introspect
}
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

func (c *client) ApplicationType() op.ApplicationType {
	if c.secret == "" {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType { return nil }

func (c *client) GrantTypes() []oidc.GrantType {
	if c.resourceServer {
		return nil
	}
	return []oidc.GrantType{oidc.GrantTypeDeviceCode, oidc.GrantTypeRefreshToken}
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
