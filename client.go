package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// The authentication flows of Flyte's authType, in their canonical
// spelling.
const (
	// AuthTypeClientSecret is the OAuth2 client-credentials grant.
	AuthTypeClientSecret = "ClientSecret"
	// AuthTypePkce is the authorization-code flow with PKCE.
	AuthTypePkce = "Pkce"
	// AuthTypeDeviceFlow is the device authorization grant (RFC 8628).
	AuthTypeDeviceFlow = "DeviceFlow"
	// AuthTypeExternalCommand takes the token from Config.Command.
	AuthTypeExternalCommand = "ExternalCommand"
	// AuthTypePassthrough sends no token of grpcauth's: each call carries
	// the headers its caller set (flyte-sdk's passthrough), such as a
	// service forwarding its own caller's token.
	AuthTypePassthrough = "Passthrough"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNoClientSecret reports a ClientSecret config without any client
	// secret: no ClientSecret, clientSecretEnvVar or clientSecretLocation.
	ErrNoClientSecret = errors.New("no client secret: set Config.ClientSecret (FLYTE_CREDENTIALS_CLIENT_SECRET), clientSecretEnvVar or clientSecretLocation")
)

// authAliases maps lower-cased authType values, Flyte's and flytekit's
// FLYTE_CREDENTIALS_AUTH_MODE spellings, to the canonical name.
var authAliases = map[string]string{
	"clientsecret":       AuthTypeClientSecret,
	"client_credentials": AuthTypeClientSecret,
	"basic":              AuthTypeClientSecret,
	"pkce":               AuthTypePkce,
	"standard":           AuthTypePkce,
	"deviceflow":         AuthTypeDeviceFlow,
	"externalcommand":    AuthTypeExternalCommand,
	"external_process":   AuthTypeExternalCommand,
	"passthrough":        AuthTypePassthrough,
}

// defaultPkce is the flow of a Config without authType and clientId (what
// flytectl config init writes): flytekit's, the browser login with the
// public client id FlyteAdmin advertises, started only when a server asks
// for a token, so that an open server costs nothing.
const defaultPkce = "Pkce (default)"

// AuthMode returns the canonical name of the flow c selects
// (AuthTypeClientSecret, AuthTypePkce, AuthTypeDeviceFlow,
// AuthTypeExternalCommand or AuthTypePassthrough); "" when c names none (no authType and no
// clientId: New then uses the browser login, Pkce with the public client
// id the deployment advertises, once a server asks for a token); and an
// error for an authType no Flyte client knows.
func (c Config) AuthMode() (string, error) {
	t := strings.TrimSpace(c.AuthType)
	if t == "" {
		if strings.TrimSpace(c.ClientID) == "" {
			return "", nil
		}
		return AuthTypeClientSecret, nil
	}
	canon, ok := authAliases[strings.ToLower(t)]
	if !ok {
		return "", fmt.Errorf("grpcauth: unknown authType %q: want ClientSecret, Pkce, DeviceFlow, ExternalCommand or Passthrough", redact.Clip(t, 64))
	}
	return canon, nil
}

// authMode returns the canonical auth type (defaultPkce without authType
// and clientId), or an error for an unknown one.
func (c Config) authMode() (string, error) {
	flow, err := c.AuthMode()
	switch {
	case err != nil:
		return "", err
	case flow == "":
		return defaultPkce, nil
	}
	return flow, nil
}

// Target returns the gRPC target of Endpoint for grpc.NewClient: "host:port"
// and "dns:///host:port" are both accepted, and returned as given. It fails
// on an empty endpoint or a URL such as "https://host". It is safe for
// concurrent use with other reads of c.
func (c Config) Target() (string, error) {
	e := strings.TrimSpace(c.Endpoint)
	if e == "" {
		return "", errors.New("grpcauth: endpoint is empty: set admin.endpoint or FLYTE_PLATFORM_URL")
	}
	lower := strings.ToLower(e)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		return "", fmt.Errorf("grpcauth: endpoint %q is a URL: want host:port or dns:///host:port", redact.URL(e))
	}
	if rest, ok := strings.CutPrefix(e, "dns:///"); ok && rest == "" {
		return "", fmt.Errorf("grpcauth: endpoint %q has no host", redact.URL(e))
	}
	return e, nil
}

// TransportCredentials returns the connection's security: plaintext when
// Insecure is set, else TLS with the system's roots, plus the certificates
// in CACertFilePath, without verification when InsecureSkipVerify is set.
// It reads CACertFilePath; it does no network I/O. It is safe for
// concurrent use with other reads of c.
func (c Config) TransportCredentials() (credentials.TransportCredentials, error) {
	if c.Insecure {
		return insecure.NewCredentials(), nil
	}
	cfg, err := c.netconf().TLS()
	if err != nil {
		return nil, fmt.Errorf("grpcauth: %w", err)
	}
	return credentials.NewTLS(cfg), nil
}

// secretSource resolves the secret as Flyte does: ClientSecret, else
// clientSecretEnvVar, else clientSecretLocation. The latter two are read
// at every token request, so rotation is picked up; they are read once
// here too, so that a missing or empty secret is reported now. Errors name
// the source, never the value.
func (c Config) secretSource() (authenticator.SecretSource, error) {
	var src authenticator.SecretSource
	var what string
	switch {
	case c.ClientSecret != "":
		src, what = authenticator.SecretFromValue(c.ClientSecret), "clientSecret"
	case c.ClientSecretEnvVar != "":
		src, what = authenticator.SecretFromEnv(c.ClientSecretEnvVar), "clientSecretEnvVar"
	case c.ClientSecretLocation != "":
		src, what = authenticator.SecretFromFile(c.ClientSecretLocation), "clientSecretLocation"
	default:
		return nil, fmt.Errorf("grpcauth: %w", ErrNoClientSecret)
	}
	if _, err := src.ClientSecret(context.Background()); err != nil {
		return nil, fmt.Errorf("grpcauth: client secret from %s: %w", what, err)
	}
	return src, nil
}
