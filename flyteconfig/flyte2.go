package flyteconfig

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flyteauth/grpcauth/internal/redact"
)

// What flyte-sdk (Flyte 2's Python SDK) reads beyond flytekit's names: its
// own environment variable names, API keys, the in-cluster overrides of a
// task's pod, its config file search, and endpoints written as URLs.

// sdkEnvKeys are flyte-sdk's names of the keys: "FLYTE_" and the key's
// path in the file, upper-cased, dots made underscores (so
// admin.insecureSkipVerify is FLYTE_ADMIN_INSECURESKIPVERIFY). They are
// applied before flytekit's names, which win where both are set.
var sdkEnvKeys = []struct{ env, key string }{
	{"FLYTE_ADMIN_ENDPOINT", "endpoint"},
	{"FLYTE_ADMIN_INSECURE", "insecure"},
	{"FLYTE_ADMIN_INSECURESKIPVERIFY", "insecureSkipVerify"},
	{"FLYTE_ADMIN_CACERTFILEPATH", "caCertFilePath"},
	{"FLYTE_ADMIN_HTTPPROXYURL", "httpProxyURL"},
	{"FLYTE_CONSOLE_ENDPOINT", "consoleEndpoint"},
	{"FLYTE_ADMIN_CLIENTID", "clientId"},
	{"FLYTE_ADMIN_CLIENTSECRETLOCATION", "clientSecretLocation"},
	{"FLYTE_ADMIN_CLIENTSECRETENVVAR", "clientSecretEnvVar"},
	{"FLYTE_ADMIN_SCOPES", "scopes"},
	{"FLYTE_ADMIN_AUTHTYPE", "authType"},
	{"FLYTE_ADMIN_COMMAND", "command"},
	{"FLYTE_ADMIN_PROXYCOMMAND", "proxyCommand"},
}

// inClusterKeys are what Flyte 2 sets in a task's pod (flyte-sdk's
// init_in_cluster); applied last, they win over everything else.
var inClusterKeys = []struct{ env, key string }{
	{"_U_EP_OVERRIDE", "endpoint"},
	{"_U_INSECURE", "insecure"},
	{"_U_INSECURE_SKIP_VERIFY", "insecureSkipVerify"},
}

// envOrgName is the in-cluster organisation (flyte-sdk's _U_ORG_NAME).
const envOrgName = "_U_ORG_NAME"

// apiKeyVars hold an API key: the user's, then the two a task's pod may
// carry (flyte-sdk reads FLYTE_API_KEY; its runtime _UNION_EAGER_API_KEY;
// its examples mount EAGER_API_KEY). The first one set is used.
var apiKeyVars = []string{"FLYTE_API_KEY", "_UNION_EAGER_API_KEY", "EAGER_API_KEY"}

// apiKey is a decoded API key.
type apiKey struct{ endpoint, clientID, secret, org string }

// decodeAPIKey decodes base64 of "endpoint:client_id:client_secret:org".
// flyte-sdk splits at the first three colons, which breaks an endpoint
// with a scheme or a port; here an endpoint that starts with a scheme
// ("https://", "http://", "dns:///") or ends with a port keeps them, and
// the rest splits as flyte-sdk splits it (so a secret with a colon stays
// whole in the secret, never in the endpoint). An org of "" or "None" is
// no org. Its errors never hold the key.
func decodeAPIKey(raw string) (apiKey, error) {
	raw = strings.TrimSpace(raw)
	data, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(raw); err != nil {
			return apiKey{}, fmt.Errorf("not base64 (%d characters)", len(raw))
		}
	}
	s := string(data)
	var scheme string
	for _, p := range []string{"https://", "http://", "dns:///"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			scheme, s = s[:len(p)], s[len(p):]
			break
		}
	}
	parts := strings.SplitN(s, ":", 4)
	if len(parts) == 4 && isPort(parts[1]) {
		// host:port:client_id:client_secret:org
		rest := strings.SplitN(parts[2]+":"+parts[3], ":", 3)
		if len(rest) == 3 {
			parts = []string{parts[0] + ":" + parts[1], rest[0], rest[1], rest[2]}
		}
	}
	if len(parts) != 4 {
		return apiKey{}, fmt.Errorf("want base64 of endpoint:client_id:client_secret:org, got %d of those 4 fields", len(parts))
	}
	k := apiKey{endpoint: scheme + parts[0], clientID: parts[1], secret: parts[2], org: parts[3]}
	switch {
	case strings.TrimSpace(k.endpoint) == "":
		return apiKey{}, fmt.Errorf("its endpoint is empty")
	case k.clientID == "":
		return apiKey{}, fmt.Errorf("its client id is empty")
	case k.secret == "":
		return apiKey{}, fmt.Errorf("its client secret is empty")
	}
	if k.org == "None" {
		k.org = ""
	}
	return k, nil
}

// isPort reports whether s is a port number.
func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536 && s == strconv.Itoa(n)
}

// applyAPIKey sets the endpoint, the client credentials and the org from
// the first API key variable set.
func (l *Loaded) applyAPIKey(lookup func(string) string) error {
	for _, name := range apiKeyVars {
		raw := lookup(name)
		if raw == "" {
			continue
		}
		source := "env " + name
		k, err := decodeAPIKey(raw)
		if err != nil {
			return &Error{Source: source, Msg: "malformed API key: " + err.Error()}
		}
		for _, kv := range [][2]string{{"endpoint", k.endpoint}, {"clientId", k.clientID}, {clientSecretKey, k.secret}, {"authType", "ClientSecret"}} {
			if err := l.Set(kv[0], kv[1], source); err != nil {
				return err
			}
		}
		if k.org != "" {
			l.Org, l.orgSource = k.org, source
		}
		return nil
	}
	return nil
}

// applyEnv applies the flyte-sdk names, then flytekit's, then the
// in-cluster overrides and the API key's place among them: file < API key
// < flyte-sdk names < flytekit names < in-cluster. Where a flyte-sdk name
// and a flytekit name set one key differently, a warning says which won.
func (l *Loaded) applyEnv(lookup func(string) string) error {
	if err := l.applyAPIKey(lookup); err != nil {
		return err
	}
	bySDK := make(map[string]string) // key: the flyte-sdk variable that set it
	for _, e := range sdkEnvKeys {
		if v := lookup(e.env); v != "" {
			if err := l.Set(e.key, v, "env "+e.env); err != nil {
				return err
			}
			bySDK[e.key] = e.env
		}
	}
	for _, e := range envKeys {
		v := lookup(e.env)
		if v == "" {
			continue
		}
		if sdk, ok := bySDK[e.key]; ok && lookup(sdk) != v {
			l.warn(fmt.Sprintf("%s and %s are both set, differently: %s (flytekit's name) wins", e.env, sdk, e.env))
		}
		if err := l.Set(e.key, v, "env "+e.env); err != nil {
			return err
		}
	}
	for _, e := range inClusterKeys {
		if v := lookup(e.env); v != "" {
			if err := l.Set(e.key, v, "env "+e.env); err != nil {
				return err
			}
		}
	}
	if v := lookup(envOrgName); v != "" {
		l.Org, l.orgSource = v, "env "+envOrgName
	}
	return nil
}

// normalizeEndpoint turns an endpoint written as a URL, as flyte-sdk
// accepts it, into the host[:port] that grpcauth.Config wants: http://
// means plaintext and https:// TLS (recorded as coming from the endpoint's
// source); dns:/// and a bare host[:port] are kept as they are.
func (l *Loaded) normalizeEndpoint(source string) error {
	e := strings.TrimSpace(l.Config.Endpoint)
	lower := strings.ToLower(e)
	var insecure bool
	switch {
	case strings.HasPrefix(lower, "https://"):
		e = e[len("https://"):]
	case strings.HasPrefix(lower, "http://"):
		e, insecure = e[len("http://"):], true
	case strings.HasPrefix(lower, "dns:///") || !strings.Contains(e, "://"):
		// The plaintext of an http:// endpoint this one replaces goes
		// with it: an endpoint without a scheme leaves TLS to insecure.
		if strings.HasPrefix(l.Source("insecure"), schemeSource) {
			l.Config.Insecure = false
			l.record(fieldByKey["insecure"], sourceDefault)
		}
		return nil
	default:
		return &Error{Source: source, Key: "endpoint", Msg: fmt.Sprintf("%q: want host:port, dns:///host:port, http://host:port or https://host", redact.URL(e))}
	}
	e = strings.TrimSuffix(e, "/")
	if e == "" || strings.ContainsAny(e, "/?#@") {
		return &Error{Source: source, Key: "endpoint", Msg: fmt.Sprintf("%q: an endpoint URL is a scheme and host[:port], without path, query or user", redact.URL(l.Config.Endpoint))}
	}
	l.Config.Endpoint = e
	l.record(fieldByKey["endpoint"], source)
	l.Config.Insecure = insecure
	l.record(fieldByKey["insecure"], schemeSource+" ("+source+")")
	return nil
}

// schemeSource starts the source of insecure when an endpoint's scheme set
// it.
const schemeSource = "the scheme of the endpoint"

// candidate is a config file Load may read.
type candidate struct {
	path string
	// explicit: named by the caller or a variable; missing is an error.
	explicit bool
	origin   string
}

// searchPath lists the files Load tries, in flyte-sdk's order: the
// first that exists is read. Without Options.File: ./config.yaml,
// ./.flyte/config.yaml, <git root>/.flyte/config.yaml, UCTL_CONFIG,
// FLYTECTL_CONFIG, ~/.union/config.yaml, ~/.flyte/config.yaml.
func searchPath(o Options, lookup func(string) string) []candidate {
	if o.File != "" {
		return []candidate{{o.File, true, "the config file"}}
	}
	var c []candidate
	if o.Dir != "" {
		c = append(c,
			candidate{filepath.Join(o.Dir, "config.yaml"), false, ""},
			candidate{filepath.Join(o.Dir, ".flyte", "config.yaml"), false, ""})
		if root := gitRoot(o.Dir); root != "" && root != o.Dir {
			c = append(c, candidate{filepath.Join(root, ".flyte", "config.yaml"), false, ""})
		}
	}
	for _, name := range []string{"UCTL_CONFIG", envConfigFile} {
		if p := lookup(name); p != "" {
			c = append(c, candidate{p, true, "the config file named by " + name})
		}
	}
	if o.HomeDir != "" {
		c = append(c,
			candidate{filepath.Join(o.HomeDir, ".union", "config.yaml"), false, ""},
			candidate{filepath.Join(o.HomeDir, ".flyte", "config.yaml"), false, ""})
	}
	return c
}

// gitRoot returns the nearest directory at or above dir that holds .git
// (a directory, or a worktree's file), or "".
func gitRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}
