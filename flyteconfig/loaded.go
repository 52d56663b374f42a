package flyteconfig

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/flyteauth/grpcauth"
)

// Where values come from, as Source reports it besides a file's path,
// "env NAME" and "flag --name".
const (
	// sourceDefault marks a value nobody set: the zero value or a default.
	sourceDefault = "default"
	// sourceExplicit marks a value set in Go after loading, by assigning
	// the field.
	sourceExplicit = "explicit"
)

const (
	// defaultClientSecretLocation is where the client secret is looked
	// for when nothing names a location, as Flyte's admin client does.
	defaultClientSecretLocation = "/etc/secrets/client_secret"
	// clientSecretKey is the key of Config.ClientSecret for Set, Settings
	// and Source; it is not a key of Flyte's config file.
	clientSecretKey = "clientSecret"
	// envConfigFile names the variable that points at the config file, as
	// flytectl and flytekit read it.
	envConfigFile = "FLYTECTL_CONFIG"
)

// Loaded is a Config with where each of its values came from. Load makes
// one; the command-line tool applies its flags with Set. It is not safe for
// concurrent use while it is changed.
type Loaded struct {
	// Config is what was loaded; assign its fields to override it (Source
	// then reports "explicit").
	Config grpcauth.Config
	// File is the config file that was read, "" if none.
	File string
	// Org is the organisation an API key or a task pod's _U_ORG_NAME
	// names, "" if none: kept for callers whose requests name it (Flyte 2's
	// do); authentication does not use it.
	Org string

	orgSource string // where Org came from

	// p is where values came from; Format never prints it.
	p *provenance
}

// provenance is what a Loaded knows of its values' origins.
type provenance struct {
	// origins records where loaded values came from.
	origins map[string]origin
	// warnings are what Load noticed in the file.
	warnings []string
}

// Format prints l for every fmt verb without the client secret or the
// credentials of URLs: its file and its Config (see grpcauth.Config's
// Format), never the provenance, which holds fingerprints of the values.
func (l Loaded) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "flyteconfig.Loaded{File: %q, Config: %+v}", l.File, l.Config)
}

// prov returns l's provenance for reading: it never changes l, so reads
// from several goroutines are safe.
func (l *Loaded) prov() *provenance {
	if l.p == nil {
		return &provenance{}
	}
	return l.p
}

// change returns a copy of l's provenance that l now holds, for a change:
// a copy of a Loaded never sees the changes of another.
func (l *Loaded) change() *provenance {
	old := l.prov()
	l.p = &provenance{origins: maps.Clone(old.origins), warnings: slices.Clone(old.warnings)}
	return l.p
}

// Warnings returns what is worth a look but not refused, one sentence each:
// unknown keys of the file's admin section (with the closest known key,
// such as clientId for clientID), keys Flyte has deprecated, a secret
// written into the file, keys set but not read by the chosen authType, and
// an authType no Flyte client knows.
func (l *Loaded) Warnings() []string {
	w := slices.Clone(l.prov().warnings)
	if _, err := l.Config.AuthMode(); err != nil {
		return append(w, strings.TrimPrefix(err.Error(), "grpcauth: "))
	}
	return append(w, l.unusedKeys()...)
}

// SecretSource says where the client secret will be read from, such as
// "environment variable MY_SECRET (clientSecretEnvVar, from
// /home/me/.flyte/config.yaml)", without the secret; "none" if nowhere.
func (l *Loaded) SecretSource() string {
	c := &l.Config
	switch {
	case c.ClientSecret != "":
		return fmt.Sprintf("Config.ClientSecret (from %s)", l.Source(clientSecretKey))
	case c.ClientSecretEnvVar != "":
		return fmt.Sprintf("environment variable %s (clientSecretEnvVar, from %s)", c.ClientSecretEnvVar, l.Source("clientSecretEnvVar"))
	case c.ClientSecretLocation != "":
		return fmt.Sprintf("file %s (clientSecretLocation, from %s)", c.ClientSecretLocation, l.Source("clientSecretLocation"))
	}
	return "none"
}

// oauthKeys are read by every OAuth2 flow: client credentials, PKCE and
// the device flow.
var oauthKeys = []string{"clientId", "scopes", "audience", "audienceParam", "useAudienceFromAdmin", "tokenUrl", "tokenRefreshWindow", "tokenCache"}

// flowKeys lists, for each flow, the keys only some flows read.
var flowKeys = map[string][]string{
	grpcauth.AuthTypeClientSecret:    append(slices.Clone(oauthKeys), "clientSecretLocation", "clientSecretEnvVar", clientSecretKey),
	grpcauth.AuthTypePkce:            append(slices.Clone(oauthKeys), "pkceConfig.timeout", "pkceConfig.refreshTime", "pkceConfig.authParams", "pkceConfig.callbackPage"),
	grpcauth.AuthTypeDeviceFlow:      append(slices.Clone(oauthKeys), "deviceFlowConfig.refreshTime", "deviceFlowConfig.timeout", "deviceFlowConfig.pollInterval"),
	grpcauth.AuthTypeExternalCommand: {"command"},
	grpcauth.AuthTypePassthrough:     {},
}

// unusedKeys says which keys are set (by a file, the environment, a flag
// or in Go, not by default) although the flow the Config selects does not
// read them, such as clientSecretLocation with authType Pkce, one sentence
// each, in the order of Keys.
func (l *Loaded) unusedKeys() []string {
	flow, err := l.Config.AuthMode()
	if err != nil {
		return nil
	}
	used := flowKeys[cmp.Or(flow, grpcauth.AuthTypePkce)]
	var out []string
	for _, key := range Keys() {
		if !flowOnly(key) || slices.Contains(used, key) {
			continue
		}
		src := l.Source(key)
		if src == sourceDefault || l.isZero(fieldByKey[key]) {
			// Not set, or set empty (a flag that names the secret's
			// source clears the others): nothing to ignore.
			continue
		}
		if flow == "" {
			out = append(out, fmt.Sprintf("%s is set (%s) but no authType is set, so the default browser login (Pkce) does not read it", key, src))
		} else {
			out = append(out, fmt.Sprintf("%s is set (%s) but authType %s does not read it", key, src, flow))
		}
	}
	return out
}

// flowOnly reports whether only some flows read key.
func flowOnly(key string) bool {
	for _, keys := range flowKeys {
		if slices.Contains(keys, key) {
			return true
		}
	}
	return false
}

// warn records a warning about the file.
func (l *Loaded) warn(msg string) {
	p := l.change()
	p.warnings = append(p.warnings, msg)
}
