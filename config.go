package grpcauth

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
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

// envKeys maps the environment variables flytekit reads to Config keys, in
// the order they are applied.
var envKeys = []struct{ env, key string }{
	{"FLYTE_PLATFORM_URL", "endpoint"},
	{"FLYTE_PLATFORM_INSECURE", "insecure"},
	{"FLYTE_PLATFORM_INSECURE_SKIP_VERIFY", "insecureSkipVerify"},
	{"FLYTE_PLATFORM_CA_CERT_FILE_PATH", "caCertFilePath"},
	{"FLYTE_PLATFORM_HTTP_PROXY_URL", "httpProxyURL"},
	{"FLYTE_CREDENTIALS_CLIENT_ID", "clientId"},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET", ClientSecretKey},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION", "clientSecretLocation"},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "clientSecretEnvVar"},
	{"FLYTE_CREDENTIALS_SCOPES", "scopes"},
	{"FLYTE_CREDENTIALS_AUTH_MODE", "authType"},
	{"FLYTE_CREDENTIALS_AUDIENCE", "audience"},
}

// Config is the admin section of a Flyte config file (~/.flyte/config.yaml):
// how to reach FlyteAdmin and how to authenticate to it. The yaml tags are
// Flyte's key names. Build one with LoadConfig, or as a literal; fields
// assigned after loading win over the file and the environment.
//
// A Config is a plain value: reading it from several goroutines is safe,
// changing it while another goroutine reads it is not. String, GoString and
// Settings never print ClientSecret.
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
	// supported yet).
	Command []string `yaml:"command"`
	// ProxyCommand is the command that produces a proxy authorization
	// token (not supported yet: a Config that sets it is refused).
	ProxyCommand []string `yaml:"proxyCommand"`
	// ClientSecret is the client secret itself. It is never read from the
	// file; LoadConfig takes it from FLYTE_CREDENTIALS_CLIENT_SECRET. When
	// set, it wins over ClientSecretEnvVar and ClientSecretLocation.
	ClientSecret string `yaml:"-"`

	// file is the config file that was read, "" if none.
	file string
	// origins records where loaded values came from. It is copied before
	// every change, so copies of a Config never share changes.
	origins map[string]origin
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
)

type field struct {
	key   string
	index int
	kind  fieldKind
}

// fields lists the keys of Config in declaration order, from its yaml tags;
// ClientSecret is listed under ClientSecretKey.
var fields, fieldByKey = configFields()

func configFields() ([]field, map[string]field) {
	t := reflect.TypeFor[Config]()
	var list []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key := f.Tag.Get("yaml")
		if key == "-" {
			key = ClientSecretKey
		}
		var kind fieldKind
		switch f.Type.Kind() {
		case reflect.Bool:
			kind = kindBool
		case reflect.Slice:
			kind = kindList
		}
		list = append(list, field{key: key, index: i, kind: kind})
	}
	byKey := make(map[string]field, len(list))
	for _, f := range list {
		byKey[f.key] = f
	}
	return list, byKey
}

// Keys returns the keys Config understands, Flyte's names, in declaration
// order, ClientSecretKey last. It is safe for concurrent use.
func Keys() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.key
	}
	return out
}

// Set parses value as the value of key (a yaml key such as "insecure", or
// ClientSecretKey) and records source as where it came from: booleans take
// true/false, yes/no, on/off, 1/0 in any case; lists are comma-separated,
// their items trimmed and empty ones dropped. It is how environment
// variables and command-line flags are applied. The error names source and
// key, and never repeats a secret. Set is not safe for concurrent use with
// any other use of c.
func (c *Config) Set(key, value, source string) error {
	f, ok := fieldByKey[key]
	if !ok {
		return fmt.Errorf("grpcauth: unknown config key %q", key)
	}
	v := reflect.ValueOf(c).Elem().Field(f.index)
	switch f.kind {
	case kindBool:
		b, ok := parseBool(value)
		if !ok {
			return &ConfigError{Source: source, Key: key, Msg: fmt.Sprintf("want a boolean, got %q", clip(value))}
		}
		v.SetBool(b)
	case kindList:
		v.Set(reflect.ValueOf(splitList(value)))
	default:
		v.SetString(value)
	}
	c.record(f, source)
	return nil
}

// record notes that f's current value came from source.
func (c *Config) record(f field, source string) {
	c.origins = maps.Clone(c.origins)
	if c.origins == nil {
		c.origins = make(map[string]origin)
	}
	c.origins[f.key] = origin{source: source, value: c.fingerprint(f)}
}

// format renders a field's value for Settings, the secret redacted.
func (c Config) format(f field) string {
	v := reflect.ValueOf(c).Field(f.index)
	switch {
	case f.key == ClientSecretKey:
		if v.String() == "" {
			return ""
		}
		return redacted
	case f.kind == kindBool:
		return strconv.FormatBool(v.Bool())
	case f.kind == kindList:
		return strings.Join(v.Interface().([]string), ",")
	default:
		return v.String()
	}
}

// fingerprint is what Source compares to tell whether a value changed
// since it was recorded. Unlike format it includes the secret, so a secret
// assigned after loading reads as explicit; it is never printed.
func (c Config) fingerprint(f field) string {
	if f.key == ClientSecretKey {
		return c.ClientSecret
	}
	return c.format(f)
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

func (c Config) isZero(f field) bool {
	return reflect.ValueOf(c).Field(f.index).IsZero() ||
		(f.kind == kindList && reflect.ValueOf(c).Field(f.index).Len() == 0)
}

// File returns the config file the Config was loaded from, or "" if none
// was read. It is safe for concurrent use with other reads of c.
func (c Config) File() string { return c.file }

// Setting is one resolved configuration value, as Config.Settings reports
// it. It is a plain value, safe for concurrent use.
type Setting struct {
	// Key is Flyte's name of the setting, or ClientSecretKey.
	Key string
	// Value is the value as text, lists comma-separated; the client
	// secret reads "[REDACTED]" when set.
	Value string
	// Source is where the value came from (see Config.Source).
	Source string
}

// Settings returns every key with its value and where it came from, in
// the order of Keys. The secret is redacted. It is safe for concurrent use
// with other reads of c.
func (c Config) Settings() []Setting {
	out := make([]Setting, len(fields))
	for i, f := range fields {
		out[i] = Setting{Key: f.key, Value: c.format(f), Source: c.Source(f.key)}
	}
	return out
}

const redacted = "[REDACTED]"

// String describes c with its secret redacted, for %v and %+v. It is safe
// for concurrent use with other reads of c.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("grpcauth.Config{")
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		name := reflect.TypeFor[Config]().Field(f.index).Name
		switch v := reflect.ValueOf(c).Field(f.index); {
		case f.key == ClientSecretKey && c.ClientSecret != "":
			fmt.Fprintf(&b, "%s: %s", name, redacted)
		case f.kind == kindString:
			fmt.Fprintf(&b, "%s: %q", name, v.String())
		default:
			fmt.Fprintf(&b, "%s: %v", name, v.Interface())
		}
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v does not print the secret either. It is
// safe for concurrent use with other reads of c.
func (c Config) GoString() string { return c.String() }

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
// variables (see DESIGN.md). Assign fields of the result to override both.
// It is safe for concurrent use.
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

// parseFile applies the admin section of a Flyte config file. Other
// sections and unknown keys are ignored.
func (c *Config) parseFile(path string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return &ConfigError{Source: path, Msg: "malformed YAML: " + msg, Err: err}
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
	admin := lookupKey(root, "admin")
	if admin == nil || isNull(admin) {
		return nil
	}
	if admin.Kind != yaml.MappingNode {
		return &ConfigError{Source: path, Key: "admin", Line: admin.Line, Msg: "want a mapping, got " + describe(admin)}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(admin.Content); i += 2 {
		k, v := admin.Content[i], deref(admin.Content[i+1])
		f, ok := fieldByKey[k.Value]
		if !ok || f.key == ClientSecretKey {
			continue // a key of Flyte's that we do not use
		}
		name := "admin." + k.Value
		if line, dup := seen[k.Value]; dup {
			return &ConfigError{Source: path, Key: name, Line: k.Line, Msg: fmt.Sprintf("defined twice, first on line %d", line)}
		}
		seen[k.Value] = k.Line
		if err := c.setNode(f, v); err != nil {
			err.Source, err.Key = path, name+err.Key
			return err
		}
		c.record(f, path)
	}
	return nil
}

// setNode decodes one YAML value into field f. Its error's Key is a suffix
// to the key's path ("" or "[i]").
func (c *Config) setNode(f field, n *yaml.Node) *ConfigError {
	v := reflect.ValueOf(c).Elem().Field(f.index)
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
			return "the boolean " + n.Value
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

// clip bounds a value quoted in an error.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
