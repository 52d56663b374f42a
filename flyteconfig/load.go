package flyteconfig

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/secretfile"
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
	{"FLYTE_CREDENTIALS_CLIENT_SECRET", clientSecretKey},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION", "clientSecretLocation"},
	{"FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "clientSecretEnvVar"},
	{"FLYTE_CREDENTIALS_SCOPES", "scopes"},
	{"FLYTE_CREDENTIALS_AUTH_MODE", "authType"},
	{"FLYTE_CREDENTIALS_AUDIENCE", "audience"},
	{"FLYTE_CREDENTIALS_COMMAND", "command"},
	{"FLYTE_CREDENTIALS_PROXY_COMMAND", "proxyCommand"},
}

// Options say where Load looks. The zero value is flyte-sdk's: the
// process's environment, working directory and the user's home directory.
type Options struct {
	// File is the config file to read; a missing File is an error. Empty
	// means the first found of flyte-sdk's search (see Load).
	File string
	// LookupEnv reads an environment variable; nil means os.LookupEnv. A
	// variable set to "" counts as unset.
	LookupEnv func(name string) (string, bool)
	// HomeDir is the user's home directory; empty means os.UserHomeDir.
	HomeDir string
	// Dir is the directory the search starts in; empty means the working
	// directory.
	Dir string
}

// Load reads the configuration the way flyte-sdk and flytekit do. The file
// is Options.File, else the first that exists of ./config.yaml,
// ./.flyte/config.yaml, <git root>/.flyte/config.yaml, the file named by
// UCTL_CONFIG, the file named by FLYTECTL_CONFIG (a named file that is
// missing is an error), ~/.union/config.yaml and ~/.flyte/config.yaml.
// Its admin section is overridden by an API key (FLYTE_API_KEY, else
// _UNION_EAGER_API_KEY, else EAGER_API_KEY), then by flyte-sdk's FLYTE_ADMIN_*
// names, then by flytekit's FLYTE_PLATFORM_* and FLYTE_CREDENTIALS_* names,
// then by a task pod's _U_* overrides (the README lists them all). An
// endpoint may be written host:port, dns:///host:port, http://host:port
// (plaintext) or https://host (TLS). clientSecretLocation defaults to
// /etc/secrets/client_secret, as in Flyte's admin client. Assign fields of
// the result's Config, or use Set, to override all of these. Keys it does
// not know are not errors, since Flyte files carry keys for other tools:
// see Warnings. A malformed file, API key or value is an *Error that names
// where it came from, the key and the line, never the secret. The file is
// read bounded in size; a FIFO or device is refused, never waited on.
func Load(o Options) (*Loaded, error) {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.HomeDir == "" {
		o.HomeDir, _ = os.UserHomeDir()
	}
	if o.Dir == "" && o.File == "" {
		o.Dir, _ = os.Getwd()
	}
	lookup := func(name string) string {
		v, _ := o.LookupEnv(name)
		return v
	}
	l := &Loaded{Config: grpcauth.Config{ClientSecretLocation: defaultClientSecretLocation}}
	l.record(fieldByKey["clientSecretLocation"], sourceDefault)

	for _, c := range searchPath(o, lookup) {
		data, err := readFile(c.path)
		switch {
		case err == nil:
			if err := l.parseFile(c.path, data); err != nil {
				return nil, err
			}
			l.File = c.path
			l.noteSkippedNames(c, lookup)
		case errors.Is(err, fs.ErrNotExist) && !c.explicit:
			continue // not there: the next one
		default:
			return nil, &Error{Source: c.path, Msg: "cannot read " + cmp.Or(c.origin, "the config file"), Err: err}
		}
		break
	}
	if err := l.applyEnv(lookup); err != nil {
		return nil, err
	}
	return l, nil
}

// noteSkippedNames warns when a file found before the search reached the
// variables that name one (flyte-sdk's order) leaves their file unread.
func (l *Loaded) noteSkippedNames(read candidate, lookup func(string) string) {
	if read.explicit {
		return
	}
	for _, name := range []string{"UCTL_CONFIG", envConfigFile} {
		if p := lookup(name); p != "" && p != read.path {
			l.warn(fmt.Sprintf("%s names %s, but %s comes first in the search and was read instead", name, redact.Clip(p, 256), read.path))
		}
	}
}

// maxConfigFile bounds a config file: Flyte's are a few KiB.
const maxConfigFile = 1 << 20

// readFile reads a config file, bounded in size and time.
func readFile(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return secretfile.Read(ctx, path, maxConfigFile)
}

// deprecatedKeys are admin keys flyteidl still accepts but no longer uses.
var deprecatedKeys = map[string]string{
	"useAuth":                "admin.useAuth is deprecated in Flyte (authentication follows what FlyteAdmin advertises) and is ignored",
	"authorizationServerUrl": "admin.authorizationServerUrl is deprecated in Flyte (the token endpoint comes from FlyteAdmin or tokenUrl) and is ignored",
}

// parseFile applies the admin section of a Flyte config file, and the
// console section's endpoint. Other sections are ignored; unknown keys of
// the admin section become warnings.
func (l *Loaded) parseFile(path string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return &Error{Source: path, Msg: "malformed YAML: " + redact.Clip(msg, 512), Err: err}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return &Error{Source: path, Line: root.Line, Msg: "want a mapping of sections (admin:, logger:, …), got " + describe(root)}
	}
	if console := lookupKey(root, "console"); console != nil && console.Kind == yaml.MappingNode {
		if n := lookupKey(console, "endpoint"); n != nil {
			f := fieldByKey["consoleEndpoint"]
			if err := l.setNode(f, n); err != nil {
				err.Source, err.Key = path, "console.endpoint"+err.Key
				return err
			}
			l.record(f, path)
		}
	}
	admin := lookupKey(root, "admin")
	if admin == nil || isNull(admin) {
		return nil
	}
	if admin.Kind != yaml.MappingNode {
		return &Error{Source: path, Key: "admin", Line: admin.Line, Msg: "want a mapping, got " + describe(admin)}
	}
	err := l.parseSection(path, admin, "")
	if err == nil {
		err = l.normalizeEndpoint(path)
	}
	if extra := len(l.prov().warnings) - maxWarnings; extra > 0 {
		p := l.change()
		p.warnings = append(p.warnings[:maxWarnings:maxWarnings], fmt.Sprintf("%s: %d more warnings not shown", path, extra))
	}
	return err
}

// maxWarnings bounds the warnings kept from one file.
const maxWarnings = 32

// parseSection applies the keys of mapping m: the admin section (prefix "")
// or one of its nested sections (prefix "pkceConfig.").
func (l *Loaded) parseSection(path string, m *yaml.Node, prefix string) error {
	seen := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		key := prefix + k.Value
		name := "admin." + key
		if line, dup := seen[k.Value]; dup {
			return &Error{Source: path, Key: redact.Clip(name, 128), Line: k.Line, Msg: fmt.Sprintf("defined twice, first on line %d", line)}
		}
		seen[k.Value] = k.Line
		if prefix == "" && sections[k.Value] {
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return &Error{Source: path, Key: name, Line: v.Line, Msg: "want a mapping, got " + describe(v)}
			}
			if err := l.parseSection(path, v, key+"."); err != nil {
				return err
			}
			continue
		}
		f, ok := fieldByKey[key]
		if !ok || strings.Contains(k.Value, ".") || key == clientSecretKey || key == "consoleEndpoint" {
			l.warnUnknown(path, k.Line, prefix, k.Value)
			continue
		}
		if err := l.setNode(f, v); err != nil {
			err.Source, err.Key = path, name+err.Key
			return err
		}
		l.record(f, path)
	}
	return nil
}

// warnUnknown records a warning for an admin key this module does not
// read, with the closest key it does read.
func (l *Loaded) warnUnknown(path string, line int, prefix, key string) {
	where := fmt.Sprintf("%s:%d: ", path, line)
	name := redact.Clip("admin."+prefix+key, 96)
	switch {
	case prefix == "" && key == clientSecretKey:
		l.warn(where + "admin.clientSecret is not read from the file (a secret does not belong in it): use clientSecretLocation, clientSecretEnvVar or FLYTE_CREDENTIALS_CLIENT_SECRET")
		return
	case prefix == "" && key == "consoleEndpoint":
		l.warn(where + "admin.consoleEndpoint is not a Flyte key: the console endpoint is console.endpoint")
		return
	case prefix == "" && deprecatedKeys[key] != "":
		l.warn(where + deprecatedKeys[key])
		return
	}
	msg := where + "unknown key " + name + ", ignored"
	if s := closestKey(prefix, key); s != "" {
		msg += "; did you mean " + s + "?"
	}
	l.warn(msg)
}

// closestKey returns the known key of the same section nearest to key by
// edit distance (ignoring case), or "" if none is near.
func closestKey(prefix, key string) string {
	var candidates []string
	for _, f := range fields {
		rest, ok := strings.CutPrefix(f.key, prefix)
		if !ok || f.key == clientSecretKey || f.key == "consoleEndpoint" {
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
func (l *Loaded) setNode(f field, n *yaml.Node) *Error {
	v := l.value(f)
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
			return &Error{Line: n.Line, Msg: "want a boolean, got " + describe(n)}
		}
		v.SetBool(b)
	case kindInt:
		s, ok := scalarString(n)
		if !ok {
			return &Error{Line: n.Line, Msg: "want a whole number, got " + describe(n)}
		}
		i, msg := parseInt(f, s)
		if msg != "" {
			return &Error{Line: n.Line, Msg: msg}
		}
		v.SetInt(int64(i))
	case kindDuration:
		s, ok := scalarString(n)
		if !ok || (n.ShortTag() != "!!str" && s != "0") {
			// A bare number would be nanoseconds to flyteidl: refuse it
			// rather than guess.
			return &Error{Line: n.Line, Msg: "want a duration such as 30s or 5m, got " + describe(n)}
		}
		d, msg := parseDuration(s)
		if msg != "" {
			return &Error{Line: n.Line, Msg: msg}
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
					return &Error{Key: fmt.Sprintf("[%d]", i), Line: item.Line, Msg: "want a string, got " + describe(item)}
				}
				list = append(list, s)
			}
		case f.key == "scopes":
			// One string: comma-separated, as in FLYTE_CREDENTIALS_SCOPES.
			s, ok := scalarString(n)
			if !ok {
				return &Error{Line: n.Line, Msg: "want a list of strings, got " + describe(n)}
			}
			list = splitList(s)
		default:
			return &Error{Line: n.Line, Msg: "want a list of strings, got " + describe(n)}
		}
		v.Set(reflect.ValueOf(list))
	default:
		s, ok := scalarString(n)
		if !ok {
			return &Error{Line: n.Line, Msg: "want a string, got " + describe(n)}
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
