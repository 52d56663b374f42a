package grpcauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/flyteauth/grpcauth/internal/redact"
)

// Config is the admin section of a Flyte config file (~/.flyte/config.yaml):
// how to reach a Flyte deployment and how to authenticate to it. The yaml
// tags are Flyte's key names (ConsoleEndpoint alone comes from another
// section, console.endpoint). Read one with flyteconfig.Load, or write it
// as a literal. Where a field's comment names a default, its zero value
// stands for it.
//
// Nothing that prints a Config shows ClientSecret, or the user information,
// query or fragment of a URL: not any fmt verb, log/slog (LogValue) or
// encoding/json (MarshalJSON).
type Config struct {
	// Endpoint is FlyteAdmin's gRPC address, "host:port" or
	// "dns:///host:port".
	Endpoint string `yaml:"endpoint"`
	// Insecure dials without TLS and lets the interceptors send tokens
	// over the plaintext connection, for development clusters.
	Insecure bool `yaml:"insecure"`
	// InsecureSkipVerify turns off verification of the server's
	// certificate, for FlyteAdmin and for the token endpoint.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
	// CACertFilePath names a PEM file of certificates trusted besides the
	// system's, for FlyteAdmin and for the token endpoint.
	CACertFilePath string `yaml:"caCertFilePath"`
	// AuthType is the authentication flow, case-insensitive:
	// ClientSecret (aliases client_credentials, basic), Pkce (standard),
	// DeviceFlow, ExternalCommand (external_process). Empty means
	// ClientSecret when ClientID is set, else flytekit's default: the
	// browser login (Pkce) with the public client id the deployment
	// advertises, started only when a server rejects a call.
	AuthType string `yaml:"authType"`
	// ClientID is the OAuth2 client id.
	ClientID string `yaml:"clientId"`
	// ClientSecretLocation names a file holding the client secret. It is
	// read at every token request, so a rotated secret is picked up.
	ClientSecretLocation string `yaml:"clientSecretLocation"`
	// ClientSecretEnvVar names an environment variable holding the client
	// secret. It wins over ClientSecretLocation and is read at every token
	// request.
	ClientSecretEnvVar string `yaml:"clientSecretEnvVar"`
	// Scopes are the scopes to request. Empty means the scopes FlyteAdmin
	// advertises.
	Scopes []string `yaml:"scopes"`
	// Audience is the audience to request the token for. Empty means the
	// audience FlyteAdmin advertises, if any.
	Audience string `yaml:"audience"`
	// AudienceParam says how the audience is sent: "audience" (Auth0's
	// parameter, and flytekit's; the default), "resource" (RFC 8707's
	// resource indicator, which standards-based servers read) or "both".
	AudienceParam string `yaml:"audienceParam"`
	// UseAudienceFromAdmin asks the deployment for its audience when
	// Audience is empty, even when the config names everything else (the
	// token URL, the scopes and the header key). The advertised audience
	// is used whenever the deployment is asked anyway and Audience is
	// empty; an explicit Audience always wins.
	UseAudienceFromAdmin bool `yaml:"useAudienceFromAdmin"`
	// TokenURL is the token endpoint. Empty means the one FlyteAdmin
	// advertises.
	TokenURL string `yaml:"tokenUrl"`
	// AuthorizationHeader is the metadata key that carries the token.
	// Empty means the key FlyteAdmin advertises, else "authorization".
	AuthorizationHeader string `yaml:"authorizationHeader"`
	// HTTPProxyURL is the HTTP proxy for token requests. Empty means the
	// proxy named by HTTP_PROXY, HTTPS_PROXY and NO_PROXY.
	HTTPProxyURL string `yaml:"httpProxyURL"`
	// Command is the external command of authType ExternalCommand, an
	// argv list run without a shell, whose output is the access token.
	// FLYTE_CREDENTIALS_COMMAND sets it, comma-separated.
	Command []string `yaml:"command"`
	// ProxyCommand is the command whose output goes as
	// "proxy-authorization: Bearer <token>" on every call, metadata RPC
	// and token request, for an identity-aware proxy in front of the
	// deployment. FLYTE_CREDENTIALS_PROXY_COMMAND sets it, comma-separated.
	ProxyCommand []string `yaml:"proxyCommand"`
	// MaxMessageSizeBytes bounds the size of a response message. Zero
	// means 64 MiB: gRPC's own 4 MiB is too small for FlyteAdmin's answers
	// (flytekit uses 20 MiB).
	MaxMessageSizeBytes int `yaml:"maxMessageSizeBytes"`
	// MaxRetries is how many times a call that failed with Unavailable is
	// sent again, through gRPC's retry policy; Unauthenticated is never
	// retried there (the interceptors retry it once). Zero means
	// 4 (flyteidl's), a negative value no retries. A file's
	// "maxRetries: 0" means no retries, as it does for flyteidl, and loads
	// as -1.
	MaxRetries int `yaml:"maxRetries"`
	// PerRetryTimeout is flyteidl's timeout of one attempt. It is read and
	// shown, but not enforced: gRPC-Go's retry policy has no per-attempt
	// timeout; give calls a deadline instead. Zero means 15 s.
	PerRetryTimeout time.Duration `yaml:"perRetryTimeout"`
	// MaxBackoffDelay caps the wait between two attempts of a call and
	// between two connection attempts. Zero means 8 s (flyteidl's).
	MaxBackoffDelay time.Duration `yaml:"maxBackoffDelay"`
	// DefaultServiceConfig is a gRPC service config in JSON. When set, it
	// replaces the one built from MaxRetries and MaxBackoffDelay.
	DefaultServiceConfig string `yaml:"defaultServiceConfig"`
	// TokenRefreshWindow is how long before its expiry a token is
	// refreshed (the authenticator's refresh margin). Zero means the
	// authenticator's default, or the flow's refreshTime.
	TokenRefreshWindow time.Duration `yaml:"tokenRefreshWindow"`
	// TokenCache says where the tokens of the browser login and the device
	// flow are kept between runs (and those of `grpcauth token`): "file",
	// the default, a file per login in the user cache directory, or
	// "keyring", the OS keyring (the Secret Service on Linux, the Keychain
	// on macOS, the Credential Manager on Windows), with the file when the
	// keyring cannot be used. WithTokenCache wins over it.
	TokenCache string `yaml:"tokenCache"`
	// PkceConfig configures authType Pkce (pkceConfig).
	PkceConfig PkceConfig `yaml:"pkceConfig"`
	// DeviceFlowConfig configures authType DeviceFlow (deviceFlowConfig).
	DeviceFlowConfig DeviceFlowConfig `yaml:"deviceFlowConfig"`
	// ConsoleEndpoint is the Flyte console's URL, for tools that link to
	// it. It comes from the file's console.endpoint (not the admin
	// section) or FLYTE_PLATFORM_CONSOLE_ENDPOINT; this module does not
	// use it.
	ConsoleEndpoint string `yaml:"consoleEndpoint"`
	// ClientSecret is the client secret itself. It is never read from the
	// file; flyteconfig.Load takes it from FLYTE_CREDENTIALS_CLIENT_SECRET.
	// When set, it wins over ClientSecretEnvVar and ClientSecretLocation.
	ClientSecret string `yaml:"-"`
}

// PkceConfig is the pkceConfig section of Flyte's admin config: the
// browser login.
type PkceConfig struct {
	// Timeout is how long the browser login may take. Zero means 2 min.
	Timeout time.Duration `yaml:"timeout"`
	// RefreshTime is how long before its expiry the token is refreshed.
	// Zero means the authenticator's default.
	RefreshTime time.Duration `yaml:"refreshTime"`
	// AuthParams are extra parameters of the authorization request, each
	// "name=value", such as "login_hint=me@example.com" or
	// "prompt=select_account" (flytekit's request_auth_code_params).
	AuthParams []string `yaml:"authParams"`
	// CallbackPage is a file holding the page the browser shows at the end
	// of the login, in place of grpcauth's own (flytekit's
	// default_html): an html/template given .OK, .Title, .Message, .Code,
	// .Detail and .Endpoint, each escaped. It is read, at most 256 KiB,
	// when the client is built; the page is served with a
	// Content-Security-Policy that allows inline styles and nothing else
	// (no scripts, images or fonts from anywhere).
	CallbackPage string `yaml:"callbackPage"`
}

// DeviceFlowConfig is the deviceFlowConfig section of Flyte's admin
// config: the device authorization grant (RFC 8628).
type DeviceFlowConfig struct {
	// RefreshTime is how long before its expiry the token is refreshed.
	// Zero means the authenticator's default.
	RefreshTime time.Duration `yaml:"refreshTime"`
	// Timeout is how long to wait for the user to approve the device.
	// Zero means 10 min.
	Timeout time.Duration `yaml:"timeout"`
	// PollInterval is how often to ask the token endpoint when the
	// server names no interval. Zero means 5 s.
	PollInterval time.Duration `yaml:"pollInterval"`
}

// shown is c as it may be printed: the client secret and the arguments of
// the commands replaced by a marker, and URLs without user information,
// query or fragment.
func (c Config) shown() shownConfig {
	if c.ClientSecret != "" {
		c.ClientSecret = redact.Marker
	}
	c.Endpoint = redact.URL(c.Endpoint)
	c.TokenURL = redact.URL(c.TokenURL)
	c.HTTPProxyURL = redact.URL(c.HTTPProxyURL)
	c.ConsoleEndpoint = redact.URL(c.ConsoleEndpoint)
	c.Command, c.ProxyCommand = redact.Argv(c.Command), redact.Argv(c.ProxyCommand)
	return shownConfig(c)
}

// shownConfig is a Config without its methods, so that printing it
// prints its fields.
type shownConfig Config

// Format prints c for every fmt verb (%+v and %#v with field names), the
// secret and the credentials of URLs redacted, so that no verb, not even a
// wrong one such as %d, prints a field raw.
func (c Config) Format(s fmt.State, verb rune) {
	switch {
	case verb == 'v' && (s.Flag('+') || s.Flag('#')):
		fmt.Fprintf(s, "grpcauth.Config%+v", c.shown())
	default:
		fmt.Fprintf(s, "grpcauth.Config%v", c.shown())
	}
}

// LogValue gives log/slog c's fields that are set, redacted as Format
// does.
func (c Config) LogValue() slog.Value {
	b, err := json.Marshal(c)
	if err != nil {
		return slog.StringValue(fmt.Sprint(c))
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // 33554432, not 3.3554432e+07
	_ = d.Decode(&m)
	attrs := make([]slog.Attr, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		attrs = append(attrs, slog.Any(k, m[k]))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON writes c for display, under Flyte's key names, the fields
// that are set, redacted as Format does. It is not meant to be read back.
func (c Config) MarshalJSON() ([]byte, error) {
	s := c.shown()
	return json.Marshal(struct {
		Endpoint             string            `json:"endpoint,omitempty"`
		Insecure             bool              `json:"insecure,omitempty"`
		InsecureSkipVerify   bool              `json:"insecureSkipVerify,omitempty"`
		CACertFilePath       string            `json:"caCertFilePath,omitempty"`
		AuthType             string            `json:"authType,omitempty"`
		ClientID             string            `json:"clientId,omitempty"`
		ClientSecretLocation string            `json:"clientSecretLocation,omitempty"`
		ClientSecretEnvVar   string            `json:"clientSecretEnvVar,omitempty"`
		Scopes               []string          `json:"scopes,omitempty"`
		Audience             string            `json:"audience,omitempty"`
		AudienceParam        string            `json:"audienceParam,omitempty"`
		UseAudienceFromAdmin bool              `json:"useAudienceFromAdmin,omitempty"`
		TokenURL             string            `json:"tokenUrl,omitempty"`
		AuthorizationHeader  string            `json:"authorizationHeader,omitempty"`
		HTTPProxyURL         string            `json:"httpProxyURL,omitempty"`
		Command              []string          `json:"command,omitempty"`
		ProxyCommand         []string          `json:"proxyCommand,omitempty"`
		MaxMessageSizeBytes  int               `json:"maxMessageSizeBytes,omitempty"`
		MaxRetries           int               `json:"maxRetries,omitempty"`
		PerRetryTimeout      string            `json:"perRetryTimeout,omitempty"`
		MaxBackoffDelay      string            `json:"maxBackoffDelay,omitempty"`
		DefaultServiceConfig string            `json:"defaultServiceConfig,omitempty"`
		TokenRefreshWindow   string            `json:"tokenRefreshWindow,omitempty"`
		TokenCache           string            `json:"tokenCache,omitempty"`
		PkceConfig           map[string]string `json:"pkceConfig,omitempty"`
		DeviceFlowConfig     map[string]string `json:"deviceFlowConfig,omitempty"`
		ConsoleEndpoint      string            `json:"consoleEndpoint,omitempty"`
		ClientSecret         string            `json:"clientSecret,omitempty"`
	}{
		s.Endpoint, s.Insecure, s.InsecureSkipVerify, s.CACertFilePath, s.AuthType, s.ClientID,
		s.ClientSecretLocation, s.ClientSecretEnvVar, s.Scopes, s.Audience, s.AudienceParam, s.UseAudienceFromAdmin,
		s.TokenURL, s.AuthorizationHeader, s.HTTPProxyURL, s.Command, s.ProxyCommand,
		s.MaxMessageSizeBytes, s.MaxRetries, duration(s.PerRetryTimeout), duration(s.MaxBackoffDelay),
		s.DefaultServiceConfig, duration(s.TokenRefreshWindow), s.TokenCache,
		pkceShown(s.PkceConfig),
		durations("refreshTime", s.DeviceFlowConfig.RefreshTime, "timeout", s.DeviceFlowConfig.Timeout, "pollInterval", s.DeviceFlowConfig.PollInterval),
		s.ConsoleEndpoint, s.ClientSecret,
	})
}

// pkceShown is the pkceConfig section for MarshalJSON.
func pkceShown(p PkceConfig) map[string]string {
	m := durations("timeout", p.Timeout, "refreshTime", p.RefreshTime)
	if len(p.AuthParams) > 0 {
		m["authParams"] = strings.Join(p.AuthParams, ",")
	}
	return m
}

// duration writes d as "5m0s", "" for zero.
func duration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// durations is a section of named durations, those that are set.
func durations(kv ...any) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if d := duration(kv[i+1].(time.Duration)); d != "" {
			m[kv[i].(string)] = d
		}
	}
	return m
}
