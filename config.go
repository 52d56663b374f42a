package grpcauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flyteauth/grpcauth/internal/redact"
)

// Where values come from, as Setting.Source reports it. A file's values
// report the file's path, an environment variable's values "env NAME", and
// the command-line tool's flags "flag --name".
const (
	// SourceDefault marks a value nobody set: the zero value or one of
	// the defaults LoadConfigWith applies. Being a constant, it is safe
	// for concurrent use.
	SourceDefault = "default"
	// SourceExplicit marks a value set in Go after loading, by assigning
	// the field. Being a constant, it is safe for concurrent use.
	SourceExplicit = "explicit"
)

// DefaultClientSecretLocation is where LoadConfig looks for the client
// secret when neither the file nor the environment names a location, as
// Flyte's admin client does. Being a constant, it is safe for concurrent
// use.
const DefaultClientSecretLocation = "/etc/secrets/client_secret"

// ClientSecretKey is the key under which Set, Settings and Source handle
// Config.ClientSecret. It is not a key of Flyte's config file. Being a
// constant, it is safe for concurrent use.
const ClientSecretKey = "clientSecret"

// EnvConfigFile names the environment variable that points at the config
// file, as flytectl and flytekit read it. Being a constant, it is safe for
// concurrent use.
const EnvConfigFile = "FLYTECTL_CONFIG"

// The defaults of flyteidl's admin client for the interactive flows, which
// a zero duration in PkceConfig and DeviceFlowConfig stands for.
const (
	// DefaultPkceTimeout is how long a browser login may take
	// (pkceConfig.timeout).
	DefaultPkceTimeout = 2 * time.Minute
	// DefaultPkceRefreshTime is pkceConfig.refreshTime: how long before
	// expiry a PKCE token is refreshed.
	DefaultPkceRefreshTime = 5 * time.Minute
	// DefaultDeviceFlowRefreshTime is deviceFlowConfig.refreshTime: how
	// long before expiry a device-flow token is refreshed.
	DefaultDeviceFlowRefreshTime = 5 * time.Minute
	// DefaultDeviceFlowTimeout is how long the device flow may wait for
	// the user (deviceFlowConfig.timeout).
	DefaultDeviceFlowTimeout = 10 * time.Minute
	// DefaultDeviceFlowPollInterval is how often the token endpoint is
	// polled when the server names no interval
	// (deviceFlowConfig.pollInterval).
	DefaultDeviceFlowPollInterval = 5 * time.Second
)

// envKeys maps the environment variables flytekit reads to Config keys, in
// the order they are applied.
var envKeys = []struct{ env, key string }{
	{"FLYTE_PLATFORM_URL", "endpoint"},
	{"FLYTE_PLATFORM_INSECURE", "insecure"},
	{"FLYTE_PLATFORM_INSECURE_SKIP_VERIFY", "insecureSkipVerify"},
	{"FLYTE_PLATFORM_CA_CERT_FILE_PATH", "caCertFilePath"},
	{"FLYTE_PLATFORM_HTTP_PROXY_URL", "httpProxyURL"},
	{"FLYTE_PLATFORM_CONSOLE_ENDPOINT", "consoleEndpoint"},
	{"FLYTE_CREDENTIALS_CLIENT_ID", "clientId"},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET", ClientSecretKey},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION", "clientSecretLocation"},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "clientSecretEnvVar"},
	{"FLYTE_CREDENTIALS_SCOPES", "scopes"},
	{"FLYTE_CREDENTIALS_AUTH_MODE", "authType"},
	{"FLYTE_CREDENTIALS_AUDIENCE", "audience"},
	{"FLYTE_CREDENTIALS_COMMAND", "command"},
	{"FLYTE_CREDENTIALS_PROXY_COMMAND", "proxyCommand"},
}

// Config is the admin section of a Flyte config file (~/.flyte/config.yaml):
// how to reach FlyteAdmin and how to authenticate to it. The yaml tags are
// Flyte's key names (ConsoleEndpoint alone comes from another section,
// console.endpoint). Build one with LoadConfig, or as a literal; fields
// assigned after loading win over the file and the environment. Where a
// field's comment names a default, its zero value stands for it.
//
// A Config is a plain value: reading it from several goroutines is safe,
// changing it while another goroutine reads it is not. Nothing that prints
// it shows ClientSecret, or the user information and query of a URL: not
// String, GoString, any fmt verb, Settings, log/slog (LogValue) or
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
	// AuthType is the authentication flow: ClientSecret (aliases
	// clientSecret, client_credentials, basic; case-insensitive) is
	// supported; Pkce, DeviceFlow and ExternalCommand are not yet. Empty
	// means ClientSecret when ClientID is set, and no authentication
	// otherwise.
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
	// UseAudienceFromAdmin is accepted for compatibility. The audience
	// FlyteAdmin advertises is used whenever Audience is empty, whatever
	// this says; an explicit Audience always wins.
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
	// Command is the external command of authType ExternalCommand (not
	// supported yet), an argv list run without a shell.
	// FLYTE_CREDENTIALS_COMMAND sets it, comma-separated.
	Command []string `yaml:"command"`
	// ProxyCommand is the command that produces a proxy authorization
	// token (not supported yet: a Config that sets it is refused).
	// FLYTE_CREDENTIALS_PROXY_COMMAND sets it, comma-separated.
	ProxyCommand []string `yaml:"proxyCommand"`
	// MaxMessageSizeBytes bounds the size of a response message. Zero
	// means DefaultMaxMessageSizeBytes.
	MaxMessageSizeBytes int `yaml:"maxMessageSizeBytes"`
	// MaxRetries is how many times a call that failed with Unavailable is
	// sent again, through gRPC's retry policy; Unauthenticated is never
	// retried there (the interceptors retry it once). Zero means
	// DefaultMaxRetries, a negative value no retries. A file's
	// "maxRetries: 0" means no retries, as it does for flyteidl, and loads
	// as -1.
	MaxRetries int `yaml:"maxRetries"`
	// PerRetryTimeout is flyteidl's timeout of one attempt. It is read and
	// shown, but not enforced: gRPC-Go's retry policy has no per-attempt
	// timeout; give calls a deadline instead. Zero means
	// DefaultPerRetryTimeout.
	PerRetryTimeout time.Duration `yaml:"perRetryTimeout"`
	// MaxBackoffDelay caps the wait between two attempts of a call and
	// between two connection attempts. Zero means DefaultMaxBackoffDelay.
	MaxBackoffDelay time.Duration `yaml:"maxBackoffDelay"`
	// DefaultServiceConfig is a gRPC service config in JSON. When set, it
	// replaces the one built from MaxRetries and MaxBackoffDelay.
	DefaultServiceConfig string `yaml:"defaultServiceConfig"`
	// TokenRefreshWindow is how long before its expiry a token is
	// refreshed (the authenticator's refresh margin). Zero means the
	// authenticator's default.
	TokenRefreshWindow time.Duration `yaml:"tokenRefreshWindow"`
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
	// file; LoadConfig takes it from FLYTE_CREDENTIALS_CLIENT_SECRET. When
	// set, it wins over ClientSecretEnvVar and ClientSecretLocation.
	ClientSecret string `yaml:"-"`

	// file is the config file that was read, "" if none.
	file string
	// origins records where loaded values came from. It is copied before
	// every change, so copies of a Config never share changes.
	origins map[string]origin
	// warnings are LoadConfigWith's warnings. It is never changed after
	// loading, only replaced.
	warnings []string
}

// PkceConfig is the pkceConfig section of Flyte's admin config: the
// browser login. It is a plain value, safe for concurrent use.
type PkceConfig struct {
	// Timeout is how long the browser login may take. Zero means
	// DefaultPkceTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// RefreshTime is how long before its expiry the token is refreshed.
	// Zero means DefaultPkceRefreshTime.
	RefreshTime time.Duration `yaml:"refreshTime"`
}

// DeviceFlowConfig is the deviceFlowConfig section of Flyte's admin
// config: the device authorization grant (RFC 8628). It is a plain value,
// safe for concurrent use.
type DeviceFlowConfig struct {
	// RefreshTime is how long before its expiry the token is refreshed.
	// Zero means DefaultDeviceFlowRefreshTime.
	RefreshTime time.Duration `yaml:"refreshTime"`
	// Timeout is how long to wait for the user to approve the device.
	// Zero means DefaultDeviceFlowTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// PollInterval is how often to ask the token endpoint when the
	// server names no interval. Zero means DefaultDeviceFlowPollInterval.
	PollInterval time.Duration `yaml:"pollInterval"`
}

// origin is where a value came from, and the fingerprint of the value it
// had then: a field changed since reads as explicit.
type origin struct {
	source string
	value  string
}

// fieldKind is how a key's value is parsed.
type fieldKind int

const (
	kindString fieldKind = iota
	kindBool
	kindList
	kindInt
	kindDuration
)

type field struct {
	key   string // Flyte's name; "pkceConfig.timeout" for a nested one
	name  string // the Go field path, "PkceConfig.Timeout"
	index []int
	kind  fieldKind
	// def is how Settings shows the zero value, when it stands for a
	// default.
	def string
	// url marks a value shown with its user information and query
	// redacted.
	url bool
}

// fieldDefaults are the defaults zero values stand for, as shown.
var fieldDefaults = map[string]string{
	"maxMessageSizeBytes":           strconv.Itoa(DefaultMaxMessageSizeBytes),
	"maxRetries":                    strconv.Itoa(DefaultMaxRetries),
	"perRetryTimeout":               DefaultPerRetryTimeout.String(),
	"maxBackoffDelay":               DefaultMaxBackoffDelay.String(),
	"pkceConfig.timeout":            DefaultPkceTimeout.String(),
	"pkceConfig.refreshTime":        DefaultPkceRefreshTime.String(),
	"deviceFlowConfig.refreshTime":  DefaultDeviceFlowRefreshTime.String(),
	"deviceFlowConfig.timeout":      DefaultDeviceFlowTimeout.String(),
	"deviceFlowConfig.pollInterval": DefaultDeviceFlowPollInterval.String(),
}

// urlKeys are the keys whose values are URLs or addresses.
var urlKeys = map[string]bool{"endpoint": true, "tokenUrl": true, "httpProxyURL": true, "consoleEndpoint": true}

// fields lists the keys of Config in declaration order, from its yaml tags,
// nested sections flattened ("pkceConfig.timeout"); ClientSecret is listed
// under ClientSecretKey.
var fields, fieldByKey = configFields()

// sections are the keys of the nested admin sections.
var sections = map[string]bool{"pkceConfig": true, "deviceFlowConfig": true}

func configFields() ([]field, map[string]field) {
	var list []field
	var walk func(t reflect.Type, index []int, keyPrefix, namePrefix string)
	walk = func(t reflect.Type, index []int, keyPrefix, namePrefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key := f.Tag.Get("yaml")
			if key == "-" {
				key = ClientSecretKey
			}
			key = keyPrefix + key
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx, key+".", namePrefix+f.Name+".")
				continue
			}
			kind := kindString
			switch {
			case f.Type == reflect.TypeFor[time.Duration]():
				kind = kindDuration
			case f.Type.Kind() == reflect.Bool:
				kind = kindBool
			case f.Type.Kind() == reflect.Int:
				kind = kindInt
			case f.Type.Kind() == reflect.Slice:
				kind = kindList
			}
			list = append(list, field{key: key, name: namePrefix + f.Name, index: idx, kind: kind, def: fieldDefaults[key], url: urlKeys[key]})
		}
	}
	walk(reflect.TypeFor[Config](), nil, "", "")
	byKey := make(map[string]field, len(list))
	for _, f := range list {
		byKey[f.key] = f
	}
	return list, byKey
}

// Keys returns the keys Config understands, Flyte's names, in declaration
// order, nested ones as "pkceConfig.timeout", ClientSecretKey last. It is
// safe for concurrent use.
func Keys() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.key
	}
	return out
}

// Set parses value as the value of key (a key of Keys, such as "insecure",
// "pkceConfig.timeout" or ClientSecretKey) and records source as where it
// came from: booleans take true/false, yes/no, on/off, 1/0 in any case;
// lists are comma-separated, their items trimmed and empty ones dropped;
// integers are decimal and not negative; durations are Go durations such as
// "30s" or "5m", not negative. It is how environment variables and
// command-line flags are applied. The error names source and key, and never
// repeats a secret. Set is not safe for concurrent use with any other use
// of c.
func (c *Config) Set(key, value, source string) error {
	f, ok := fieldByKey[key]
	if !ok {
		return fmt.Errorf("grpcauth: unknown config key %q", redact.Clip(key, 64))
	}
	v := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
	switch f.kind {
	case kindBool:
		b, ok := parseBool(value)
		if !ok {
			return &ConfigError{Source: source, Key: key, Msg: fmt.Sprintf("want a boolean, got %q", clip(value))}
		}
		v.SetBool(b)
	case kindInt:
		n, msg := parseInt(f, value)
		if msg != "" {
			return &ConfigError{Source: source, Key: key, Msg: msg}
		}
		v.SetInt(int64(n))
	case kindDuration:
		d, msg := parseDuration(value)
		if msg != "" {
			return &ConfigError{Source: source, Key: key, Msg: msg}
		}
		v.SetInt(int64(d))
	case kindList:
		v.Set(reflect.ValueOf(splitList(value)))
	default:
		v.SetString(value)
	}
	c.record(f, source)
	return nil
}

// parseInt parses a non-negative decimal integer; for maxRetries, 0 means
// no retries and is stored as -1. msg says what is wrong, "" if nothing.
func parseInt(f field, s string) (n int, msg string) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, fmt.Sprintf("want a whole number, got %q", clip(s))
	case n < 0:
		return 0, fmt.Sprintf("want a number at least 0, got %d", n)
	case n == 0 && f.key == "maxRetries":
		return -1, ""
	}
	return n, ""
}

// parseDuration parses a Go duration ("30s", "5m", "1h30m") or "0".
func parseDuration(s string) (time.Duration, string) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("want a duration such as 30s or 5m, got %q", clip(s))
	case d < 0:
		return 0, fmt.Sprintf("want a duration at least 0, got %s", d)
	}
	return d, ""
}

// record notes that f's current value came from source.
func (c *Config) record(f field, source string) {
	c.origins = maps.Clone(c.origins)
	if c.origins == nil {
		c.origins = make(map[string]origin)
	}
	c.origins[f.key] = origin{source: source, value: c.fingerprint(f)}
}

// value returns the field's reflect value in c.
func (c *Config) value(f field) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index)
}

// format renders a field's value for Settings, the secret redacted and
// URLs without user information or query; "" when unset and without a
// default.
func (c *Config) format(f field) string {
	v := c.value(f)
	if f.key == ClientSecretKey {
		if v.String() == "" {
			return ""
		}
		return redacted
	}
	if v.IsZero() && f.def != "" {
		return f.def
	}
	return c.rawFormat(f)
}

// rawFormat renders a field's value as stored, URLs redacted.
func (c *Config) rawFormat(f field) string {
	v := c.value(f)
	switch f.kind {
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindList:
		return strings.Join(v.Interface().([]string), ",")
	case kindInt:
		if f.key == "maxRetries" && v.Int() < 0 {
			return "0"
		}
		return strconv.FormatInt(v.Int(), 10)
	case kindDuration:
		return time.Duration(v.Int()).String()
	}
	if f.url {
		return redact.URL(v.String())
	}
	return v.String()
}

// fingerprint is what Source compares to tell whether a value changed
// since it was recorded. It includes the secret and the whole URL, so a
// value assigned after loading reads as explicit; it is never printed.
func (c *Config) fingerprint(f field) string {
	v := c.value(f)
	switch f.kind {
	case kindString:
		return v.String()
	case kindInt, kindDuration:
		return strconv.FormatInt(v.Int(), 10)
	}
	return c.rawFormat(f)
}

// Source returns where the value of key came from: a file path, "env NAME",
// "flag --name", SourceExplicit when the field was assigned after loading,
// or SourceDefault. It is safe for concurrent use with other reads of c.
func (c Config) Source(key string) string {
	f, ok := fieldByKey[key]
	if !ok {
		return ""
	}
	o, ok := c.origins[key]
	if ok && o.value == c.fingerprint(f) {
		return o.source
	}
	if c.isZero(f) {
		return SourceDefault
	}
	return SourceExplicit
}

func (c *Config) isZero(f field) bool {
	v := c.value(f)
	return v.IsZero() || (f.kind == kindList && v.Len() == 0)
}

// File returns the config file the Config was loaded from, or "" if none
// was read. It is safe for concurrent use with other reads of c.
func (c Config) File() string { return c.file }

// Warnings returns what LoadConfigWith noticed but did not refuse, one
// sentence each: unknown keys in the admin section (with the closest known
// key, such as clientId for clientID), keys Flyte has deprecated, a secret
// written into the file. It is safe for concurrent use with other reads of
// c.
func (c Config) Warnings() []string { return slices.Clone(c.warnings) }

// Setting is one resolved configuration value, as Config.Settings reports
// it. It is a plain value, safe for concurrent use.
type Setting struct {
	// Key is Flyte's name of the setting, or ClientSecretKey.
	Key string
	// Value is the value as text, lists comma-separated, the default a
	// zero value stands for where there is one; the client secret reads
	// "[REDACTED]" when set, and URLs lose their user information and
	// query.
	Value string
	// Source is where the value came from (see Config.Source).
	Source string
}

// Settings returns every key with its value and where it came from, in
// the order of Keys. The secret and the credentials in URLs are redacted.
// It is safe for concurrent use with other reads of c.
func (c Config) Settings() []Setting {
	out := make([]Setting, len(fields))
	for i, f := range fields {
		out[i] = Setting{Key: f.key, Value: c.format(f), Source: c.Source(f.key)}
	}
	return out
}

const redacted = redact.Marker

// String describes c with its secret and the credentials in its URLs
// redacted, for %v and %+v. It is safe for concurrent use with other reads
// of c.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("grpcauth.Config{")
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		switch v := c.value(f); {
		case f.key == ClientSecretKey && c.ClientSecret != "":
			fmt.Fprintf(&b, "%s: %s", f.name, redacted)
		case f.kind == kindString:
			fmt.Fprintf(&b, "%s: %q", f.name, c.rawFormat(f))
		case f.kind == kindList:
			fmt.Fprintf(&b, "%s: %q", f.name, v.Interface())
		default:
			fmt.Fprintf(&b, "%s: %s", f.name, c.rawFormat(f))
		}
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v does not print the secret either. It is
// safe for concurrent use with other reads of c.
func (c Config) GoString() string { return c.String() }

// Format writes String for every fmt verb (%q quotes it), so that no verb,
// not even a wrong one such as %d, prints a field raw. It is safe for
// concurrent use with other reads of c.
func (c Config) Format(s fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(s, "%q", c.String())
		return
	}
	_, _ = io.WriteString(s, c.String())
}

// LogValue gives log/slog a group of the keys that have a value, as
// Settings shows them: the secret and the credentials in URLs redacted. It
// is safe for concurrent use with other reads of c.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, s := range c.Settings() {
		if s.Value != "" {
			attrs = append(attrs, slog.String(s.Key, s.Value))
		}
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON writes c for display: the keys of Settings with their typed
// values (durations as text such as "5m0s"), nested sections as objects,
// the secret "[REDACTED]" and URLs without user information or query. It
// is not meant to be read back. It is safe for concurrent use with other
// reads of c.
func (c Config) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		var v any
		switch f.kind {
		case kindBool:
			v = c.value(f).Bool()
		case kindInt:
			v, _ = strconv.Atoi(c.format(f))
		case kindList:
			v = c.value(f).Interface()
		default:
			v = c.format(f)
		}
		section, key, nested := strings.Cut(f.key, ".")
		if !nested {
			out[f.key] = v
			continue
		}
		m, _ := out[section].(map[string]any)
		if m == nil {
			m = make(map[string]any)
			out[section] = m
		}
		m[key] = v
	}
	return json.Marshal(out)
}

// ConfigError reports a config file, environment variable or flag whose
// value cannot be used. Its text names the source and the key, never a
// secret. It is a plain value, safe for concurrent use.
type ConfigError struct {
	// Source is the file path, "env NAME" or "flag --name".
	Source string
	// Key is the key's path, such as "admin.insecure"; "" when the whole
	// file is at fault.
	Key string
	// Line is the line in the file, or 0.
	Line int
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any, such as the YAML parser's or
	// the file system's.
	Err error
}

// Error reads "source: key: message (line n)". It is safe for concurrent
// use.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Unwrap returns the underlying error. It is safe for concurrent use.
func (e *ConfigError) Unwrap() error { return e.Err }

// LoadOptions says where LoadConfigWith looks. The zero value reads no
// file and no environment. It is a plain value, safe for concurrent use.
type LoadOptions struct {
	// File is the config file to read. A missing File is an error. Empty
	// means the file named by FLYTECTL_CONFIG (missing is an error too),
	// else HomeDir/.flyte/config.yaml (missing is fine).
	File string
	// LookupEnv reads an environment variable, like os.LookupEnv. Nil
	// means an empty environment. A variable set to "" counts as unset.
	LookupEnv func(name string) (string, bool)
	// HomeDir is the user's home directory. Empty means no default file.
	HomeDir string
}

// LoadConfig loads the configuration the way flytekit does: the admin
// section of the file named by FLYTECTL_CONFIG, else of
// ~/.flyte/config.yaml if it exists, overridden by the FLYTE_* environment
// variables (the README lists them). Assign fields of the result to
// override both.
// Keys it does not know are not errors, since Flyte files carry keys for
// other tools: see Config.Warnings. It is safe for concurrent use.
func LoadConfig() (Config, error) {
	home, _ := os.UserHomeDir()
	return LoadConfigWith(LoadOptions{LookupEnv: os.LookupEnv, HomeDir: home})
}

// LoadConfigWith is LoadConfig with the file, environment and home
// directory given by o, so that it can run without touching the process's
// environment. Defaults: clientSecretLocation is
// DefaultClientSecretLocation. It is safe for concurrent use.
func LoadConfigWith(o LoadOptions) (Config, error) {
	lookup := func(name string) string {
		if o.LookupEnv == nil {
			return ""
		}
		v, _ := o.LookupEnv(name)
		return v
	}
	c := Config{ClientSecretLocation: DefaultClientSecretLocation}
	c.record(fieldByKey["clientSecretLocation"], SourceDefault)

	path, explicit := o.File, o.File != ""
	origin := "the config file"
	if !explicit {
		if env := lookup(EnvConfigFile); env != "" {
			path, explicit = env, true
			origin = "the config file named by " + EnvConfigFile
		} else if o.HomeDir != "" {
			path = filepath.Join(o.HomeDir, ".flyte", "config.yaml")
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := c.parseFile(path, data); err != nil {
				return Config{}, err
			}
			c.file = path
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			// No default file: fine.
		default:
			return Config{}, &ConfigError{Source: path, Msg: "cannot read " + origin, Err: err}
		}
	}
	for _, e := range envKeys {
		v := lookup(e.env)
		if v == "" {
			continue
		}
		if err := c.Set(e.key, v, "env "+e.env); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// deprecatedKeys are admin keys flyteidl still accepts but no longer uses.
var deprecatedKeys = map[string]string{
	"useAuth":                "admin.useAuth is deprecated in Flyte (authentication follows what FlyteAdmin advertises) and is ignored",
	"authorizationServerUrl": "admin.authorizationServerUrl is deprecated in Flyte (the token endpoint comes from FlyteAdmin or tokenUrl) and is ignored",
}

// parseFile applies the admin section of a Flyte config file, and the
// console section's endpoint. Other sections are ignored; unknown keys of
// the admin section become warnings.
func (c *Config) parseFile(path string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return &ConfigError{Source: path, Msg: "malformed YAML: " + redact.Clip(msg, 512), Err: err}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return &ConfigError{Source: path, Line: root.Line, Msg: "want a mapping of sections (admin:, logger:, …), got " + describe(root)}
	}
	if console := lookupKey(root, "console"); console != nil && console.Kind == yaml.MappingNode {
		if n := lookupKey(console, "endpoint"); n != nil {
			f := fieldByKey["consoleEndpoint"]
			if err := c.setNode(f, n); err != nil {
				err.Source, err.Key = path, "console.endpoint"+err.Key
				return err
			}
			c.record(f, path)
		}
	}
	admin := lookupKey(root, "admin")
	if admin == nil || isNull(admin) {
		return nil
	}
	if admin.Kind != yaml.MappingNode {
		return &ConfigError{Source: path, Key: "admin", Line: admin.Line, Msg: "want a mapping, got " + describe(admin)}
	}
	err := c.parseSection(path, admin, "")
	if extra := len(c.warnings) - maxWarnings; extra > 0 {
		c.warnings = append(c.warnings[:maxWarnings:maxWarnings], fmt.Sprintf("%s: %d more warnings not shown", path, extra))
	}
	return err
}

// maxWarnings bounds the warnings kept from one file.
const maxWarnings = 32

// parseSection applies the keys of mapping m: the admin section (prefix "")
// or one of its nested sections (prefix "pkceConfig.").
func (c *Config) parseSection(path string, m *yaml.Node, prefix string) error {
	seen := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		key := prefix + k.Value
		name := "admin." + key
		if line, dup := seen[k.Value]; dup {
			return &ConfigError{Source: path, Key: redact.Clip(name, 128), Line: k.Line, Msg: fmt.Sprintf("defined twice, first on line %d", line)}
		}
		seen[k.Value] = k.Line
		if prefix == "" && sections[k.Value] {
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return &ConfigError{Source: path, Key: name, Line: v.Line, Msg: "want a mapping, got " + describe(v)}
			}
			if err := c.parseSection(path, v, key+"."); err != nil {
				return err
			}
			continue
		}
		f, ok := fieldByKey[key]
		if !ok || strings.Contains(k.Value, ".") || key == ClientSecretKey || key == "consoleEndpoint" {
			c.warnUnknown(path, k.Line, prefix, k.Value)
			continue
		}
		if err := c.setNode(f, v); err != nil {
			err.Source, err.Key = path, name+err.Key
			return err
		}
		c.record(f, path)
	}
	return nil
}

// warnUnknown records a warning for an admin key this module does not
// read, with the closest key it does read.
func (c *Config) warnUnknown(path string, line int, prefix, key string) {
	where := fmt.Sprintf("%s:%d: ", path, line)
	name := redact.Clip("admin."+prefix+key, 96)
	switch {
	case prefix == "" && key == ClientSecretKey:
		c.warnings = append(c.warnings, where+"admin.clientSecret is not read from the file (a secret does not belong in it): use clientSecretLocation, clientSecretEnvVar or FLYTE_CREDENTIALS_CLIENT_SECRET")
		return
	case prefix == "" && key == "consoleEndpoint":
		c.warnings = append(c.warnings, where+"admin.consoleEndpoint is not a Flyte key: the console endpoint is console.endpoint")
		return
	case prefix == "" && deprecatedKeys[key] != "":
		c.warnings = append(c.warnings, where+deprecatedKeys[key])
		return
	}
	msg := where + "unknown key " + name + ", ignored"
	if s := closestKey(prefix, key); s != "" {
		msg += "; did you mean " + s + "?"
	}
	c.warnings = append(c.warnings, msg)
}

// closestKey returns the known key of the same section nearest to key by
// edit distance (ignoring case), or "" if none is near.
func closestKey(prefix, key string) string {
	var candidates []string
	for _, f := range fields {
		rest, ok := strings.CutPrefix(f.key, prefix)
		if !ok || f.key == ClientSecretKey || f.key == "consoleEndpoint" {
			continue
		}
		if prefix == "" {
			rest, _, _ = strings.Cut(rest, ".") // a nested section's name
		}
		if !slices.Contains(candidates, rest) {
			candidates = append(candidates, rest)
		}
	}
	best, bestDist := "", max(2, len(key)/3)+1
	lower := strings.ToLower(key)
	for _, cand := range candidates {
		if d := editDistance(lower, strings.ToLower(cand)); d < bestDist {
			best, bestDist = cand, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes. It
// gives up past 64 bytes, where no key of ours is near.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// setNode decodes one YAML value into field f. Its error's Key is a suffix
// to the key's path ("" or "[i]").
func (c *Config) setNode(f field, n *yaml.Node) *ConfigError {
	v := c.value(f)
	if isNull(n) {
		v.SetZero()
		return nil
	}
	switch f.kind {
	case kindBool:
		b, ok := false, false
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!bool" || n.ShortTag() == "!!str" || n.ShortTag() == "!!int") {
			b, ok = parseBool(n.Value)
		}
		if !ok {
			return &ConfigError{Line: n.Line, Msg: "want a boolean, got " + describe(n)}
		}
		v.SetBool(b)
	case kindInt:
		s, ok := scalarString(n)
		if !ok {
			return &ConfigError{Line: n.Line, Msg: "want a whole number, got " + describe(n)}
		}
		i, msg := parseInt(f, s)
		if msg != "" {
			return &ConfigError{Line: n.Line, Msg: msg}
		}
		v.SetInt(int64(i))
	case kindDuration:
		s, ok := scalarString(n)
		if !ok || (n.ShortTag() != "!!str" && s != "0") {
			// A bare number would be nanoseconds to flyteidl: refuse it
			// rather than guess.
			return &ConfigError{Line: n.Line, Msg: "want a duration such as 30s or 5m, got " + describe(n)}
		}
		d, msg := parseDuration(s)
		if msg != "" {
			return &ConfigError{Line: n.Line, Msg: msg}
		}
		v.SetInt(int64(d))
	case kindList:
		var list []string
		switch {
		case n.Kind == yaml.SequenceNode:
			for i, item := range n.Content {
				item = deref(item)
				s, ok := scalarString(item)
				if !ok {
					return &ConfigError{Key: fmt.Sprintf("[%d]", i), Line: item.Line, Msg: "want a string, got " + describe(item)}
				}
				list = append(list, s)
			}
		case f.key == "scopes":
			// One string: comma-separated, as in FLYTE_CREDENTIALS_SCOPES.
			s, ok := scalarString(n)
			if !ok {
				return &ConfigError{Line: n.Line, Msg: "want a list of strings, got " + describe(n)}
			}
			list = splitList(s)
		default:
			return &ConfigError{Line: n.Line, Msg: "want a list of strings, got " + describe(n)}
		}
		v.Set(reflect.ValueOf(list))
	default:
		s, ok := scalarString(n)
		if !ok {
			return &ConfigError{Line: n.Line, Msg: "want a string, got " + describe(n)}
		}
		v.SetString(s)
	}
	return nil
}

// deref follows YAML aliases (*name) to the node they point to.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// lookupKey returns the value of key in mapping m, or nil.
func lookupKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// scalarString accepts a string, or a number written where a string is
// meant (a numeric client id).
func scalarString(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		return n.Value, true
	}
	return "", false
}

// describe says what a node is, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!bool":
			return "the boolean " + clip(n.Value)
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		}
		return strconv.Quote(clip(n.Value))
	}
	return "an unexpected YAML node"
}

func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1", "y", "t":
		return true, true
	case "false", "no", "off", "0", "n", "f":
		return false, true
	}
	return false, false
}

// splitList splits a comma-separated list, trimming items and dropping
// empty ones.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return slices.Clip(out)
}

// clip bounds a value quoted in an error, keeping it valid UTF-8 and free
// of control characters.
func clip(s string) string { return redact.Clip(s, 64) }
