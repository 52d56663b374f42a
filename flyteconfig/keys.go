package flyteconfig

import (
	"crypto/sha256"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/redact"
)

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
// (the root package's and authenticator's defaults, and flyteidl's).
// keeperMargin is the Keeper's own refresh margin, which a zero
// refreshTime or tokenRefreshWindow leaves in place.
const keeperMargin = "lifetime/5, at most 10s"

var fieldDefaults = map[string]string{
	"maxMessageSizeBytes":           "67108864",
	"maxRetries":                    "4",
	"perRetryTimeout":               "15s",
	"maxBackoffDelay":               "8s",
	"pkceConfig.timeout":            "2m0s",
	"pkceConfig.refreshTime":        keeperMargin,
	"deviceFlowConfig.refreshTime":  keeperMargin,
	"tokenRefreshWindow":            keeperMargin,
	"deviceFlowConfig.timeout":      "10m0s",
	"deviceFlowConfig.pollInterval": "5s",
	"tokenCache":                    "file",
}

// urlKeys are the keys whose values are URLs or addresses.
var urlKeys = map[string]bool{"endpoint": true, "tokenUrl": true, "httpProxyURL": true, "consoleEndpoint": true}

// fields lists the keys of Config in declaration order, from its yaml tags,
// nested sections flattened ("pkceConfig.timeout"); ClientSecret is listed
// under clientSecretKey.
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
				key = clientSecretKey
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
	walk(reflect.TypeFor[grpcauth.Config](), nil, "", "")
	byKey := make(map[string]field, len(list))
	for _, f := range list {
		byKey[f.key] = f
	}
	return list, byKey
}

// Keys returns the keys Config understands, Flyte's names, in declaration
// order, nested ones as "pkceConfig.timeout", clientSecretKey last. It is
// safe for concurrent use.
func Keys() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.key
	}
	return out
}

// Set parses value as the value of key (a key of Keys, such as "insecure",
// "pkceConfig.timeout" or clientSecretKey) and records source as where it
// came from: booleans take true/false, yes/no, on/off, 1/0 in any case;
// lists are comma-separated, their items trimmed and empty ones dropped;
// integers are decimal and not negative; durations are Go durations such as
// "30s" or "5m", not negative. It is how environment variables and
// command-line flags are applied. The error names source and key, and never
// repeats a secret. Set is not safe for concurrent use with any other use
// of c.
func (l *Loaded) Set(key, value, source string) error {
	f, ok := fieldByKey[key]
	if !ok {
		return fmt.Errorf("flyteconfig: unknown config key %q", redact.Clip(key, 64))
	}
	v := l.value(f)
	switch f.kind {
	case kindBool:
		b, ok := parseBool(value)
		if !ok {
			return &Error{Source: source, Key: key, Msg: fmt.Sprintf("want a boolean, got %q", clip(value))}
		}
		v.SetBool(b)
	case kindInt:
		n, msg := parseInt(f, value)
		if msg != "" {
			return &Error{Source: source, Key: key, Msg: msg}
		}
		v.SetInt(int64(n))
	case kindDuration:
		d, msg := parseDuration(value)
		if msg != "" {
			return &Error{Source: source, Key: key, Msg: msg}
		}
		v.SetInt(int64(d))
	case kindList:
		v.Set(reflect.ValueOf(splitList(value)))
	default:
		v.SetString(value)
	}
	l.record(f, source)
	if key == "endpoint" {
		return l.normalizeEndpoint(source)
	}
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
	case n > maxInt[f.key] && maxInt[f.key] > 0:
		return 0, fmt.Sprintf("want a number at most %d, got %d", maxInt[f.key], n)
	case n == 0 && f.key == "maxRetries":
		return -1, ""
	}
	return n, ""
}

// maxInt bounds the numeric keys, so that a value that loads also dials.
var maxInt = map[string]int{
	"maxRetries":          100, // grpcauth.Config.DialOptions' bound
	"maxMessageSizeBytes": math.MaxInt32,
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
func (l *Loaded) record(f field, source string) {
	p := l.change()
	if p.origins == nil {
		p.origins = make(map[string]origin)
	}
	p.origins[f.key] = origin{source: source, value: l.fingerprint(f)}
}

// value returns the field's reflect value in l.Config.
func (l *Loaded) value(f field) reflect.Value {
	return reflect.ValueOf(&l.Config).Elem().FieldByIndex(f.index)
}

// format renders a field's value for Settings, the secret redacted and
// URLs without user information or query; "" when unset and without a
// default.
func (l *Loaded) format(f field) string {
	v := l.value(f)
	if f.key == clientSecretKey {
		if v.String() == "" {
			return ""
		}
		return redact.Marker
	}
	if v.IsZero() && f.def != "" {
		return f.def
	}
	if f.key == "command" || f.key == "proxyCommand" {
		// The arguments may hold a secret.
		return strings.Join(redact.Argv(v.Interface().([]string)), ",")
	}
	return l.rawFormat(f)
}

// rawFormat renders a field's value as stored, URLs redacted.
func (l *Loaded) rawFormat(f field) string {
	v := l.value(f)
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
func (l *Loaded) fingerprint(f field) string {
	v := l.value(f)
	var s string
	switch f.kind {
	case kindString:
		s = v.String()
	case kindInt, kindDuration:
		s = strconv.FormatInt(v.Int(), 10)
	default:
		s = l.rawFormat(f)
	}
	// A hash, so that the secret is kept nowhere but in the Config.
	sum := sha256.Sum256([]byte(s))
	return string(sum[:])
}

// Source returns where the value of key came from: a file path, "env NAME",
// "flag --name", sourceExplicit when the field was assigned after loading,
// or sourceDefault. It is safe for concurrent use with other reads of c.
func (l *Loaded) Source(key string) string {
	f, ok := fieldByKey[key]
	if !ok {
		return ""
	}
	o, ok := l.prov().origins[key]
	if ok && o.value == l.fingerprint(f) {
		return o.source
	}
	if l.isZero(f) {
		return sourceDefault
	}
	return sourceExplicit
}

func (l *Loaded) isZero(f field) bool {
	v := l.value(f)
	return v.IsZero() || (f.kind == kindList && v.Len() == 0)
}

// Setting is one resolved configuration value, as Config.Settings reports
// it. It is a plain value, safe for concurrent use.
type Setting struct {
	// Key is Flyte's name of the setting, or clientSecretKey.
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
func (l *Loaded) Settings() []Setting {
	out := make([]Setting, len(fields))
	for i, f := range fields {
		out[i] = Setting{Key: f.key, Value: l.format(f), Source: l.Source(f.key)}
	}
	return out
}
