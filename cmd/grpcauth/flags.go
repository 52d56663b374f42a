package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/flyteauth/grpcauth/flyteconfig"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// newFlagSet returns a flag set that reports errors instead of exiting,
// with a usage text of summary followed by the flags.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("grpcauth "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit status to stop with, or -1
// to go on. --help prints the usage and exits 0.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	return -1
}

// configFlags are the flags that override the Flyte configuration, shared
// by token and config.
type configFlags struct {
	file string
}

// configFlag maps a flag to a config key.
type configFlag struct {
	name, key, help string
	isBool          bool
}

var configFlagList = []configFlag{
	{name: "endpoint", key: "endpoint", help: "FlyteAdmin `address`, host:port or dns:///host:port (admin.endpoint)"},
	{name: "insecure", key: "insecure", help: "dial without TLS and send tokens in plaintext, for development clusters (admin.insecure)", isBool: true},
	{name: "insecure-skip-verify", key: "insecureSkipVerify", help: "do not verify server certificates (admin.insecureSkipVerify)", isBool: true},
	{name: "ca-cert", key: "caCertFilePath", help: "PEM `file` of CA certificates to trust besides the system's (admin.caCertFilePath)"},
	{name: "auth-type", key: "authType", help: "authentication `flow`: ClientSecret, Pkce, DeviceFlow or ExternalCommand (admin.authType)"},
	{name: "client-id", key: "clientId", help: "OAuth2 client `id` (admin.clientId)"},
	{name: "client-secret-env", key: "clientSecretEnvVar", help: "environment `variable` holding the client secret (admin.clientSecretEnvVar)"},
	{name: "client-secret-file", key: "clientSecretLocation", help: "`file` holding the client secret (admin.clientSecretLocation)"},
	{name: "scopes", key: "scopes", help: "comma-separated `scopes` to request (admin.scopes)"},
	{name: "audience", key: "audience", help: "`audience` to request the token for (admin.audience)"},
	{name: "token-url", key: "tokenUrl", help: "token endpoint `URL`, instead of the one FlyteAdmin advertises (admin.tokenUrl)"},
	{name: "authorization-header", key: "authorizationHeader", help: "metadata `key` that carries the token (admin.authorizationHeader)"},
	{name: "http-proxy", key: "httpProxyURL", help: "HTTP proxy `URL` for token requests (admin.httpProxyURL)"},
}

// register adds --config and the config flags to fs.
func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "config", "", "Flyte config `file` (default: the first found of ./config.yaml, ./.flyte/config.yaml, <git root>/.flyte/config.yaml, $UCTL_CONFIG, $FLYTECTL_CONFIG, ~/.union/config.yaml, ~/.flyte/config.yaml)")
	for _, f := range configFlagList {
		if f.isBool {
			fs.Bool(f.name, false, f.help)
		} else {
			fs.String(f.name, "", f.help)
		}
	}
}

// load resolves the configuration: file, environment, then the flags set
// on the command line.
func (c *configFlags) load(fs *flag.FlagSet, env environment) (*flyteconfig.Loaded, error) {
	cfg, err := flyteconfig.Load(flyteconfig.Options{File: c.file, LookupEnv: env.lookup, HomeDir: env.home, Dir: env.dir})
	if err != nil {
		return nil, err
	}
	byName := make(map[string]configFlag, len(configFlagList))
	for _, f := range configFlagList {
		byName[f.name] = f
	}
	set := make(map[string]bool)
	fs.Visit(func(fl *flag.Flag) {
		f, ok := byName[fl.Name]
		if !ok || err != nil {
			return
		}
		set[f.key] = true
		err = cfg.Set(f.key, fl.Value.String(), "flag --"+f.name)
	})
	if err != nil {
		return nil, err
	}
	// A secret source named on the command line is the one meant: it must
	// not lose to a secret from the environment, nor, for a file, to a
	// clientSecretEnvVar from elsewhere. With both flags, Flyte's rule
	// holds: the variable wins.
	switch {
	case set["clientSecretEnvVar"]:
		err = cfg.Set("clientSecret", "", "flag --client-secret-env")
	case set["clientSecretLocation"]:
		if err = cfg.Set("clientSecret", "", "flag --client-secret-file"); err == nil {
			err = cfg.Set("clientSecretEnvVar", "", "flag --client-secret-file")
		}
	}
	return cfg, err
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// sayErr prints a command's error on w. An error can quote what a server
// chose (an OAuth error description, a status message): it is cleaned of
// control and bidirectional characters first, so that no escape sequence
// reaches the terminal.
func sayErr(w io.Writer, cmd string, err error) {
	fmt.Fprintf(w, "grpcauth %s: %s\n", cmd, forTerminal(err, 4096))
}

// packagePrefixes are the prefixes the library's errors start with: the
// command names itself instead.
var packagePrefixes = []string{"grpcauth: ", "authenticator: ", "configstore: ", "tokencache: "}

// quotedBearer and quotedJWT match a credential a server quoted in what
// it said: a bearer token, a JWT.
var (
	quotedBearer = regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{20,}`)
	quotedJWT    = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)
)

// scrub makes text that a server or the library chose fit for the
// terminal: any credential it quotes hidden (a bearer token, a JWT, and
// each of tokens), printable, at most n bytes.
func scrub(text string, n int, tokens ...string) string {
	for _, t := range tokens {
		if t != "" {
			text = strings.ReplaceAll(text, t, "<a token>")
		}
	}
	text = quotedBearer.ReplaceAllString(text, "Bearer <a token>")
	text = quotedJWT.ReplaceAllString(text, "<a token>")
	return redact.Clip(text, n)
}

// forTerminal is err's text for the person at the terminal: without the
// package prefixes it starts with, scrubbed.
func forTerminal(err error, n int) string {
	text := err.Error()
	for trimmed := true; trimmed; {
		trimmed = false
		for _, p := range packagePrefixes {
			if rest, ok := strings.CutPrefix(text, p); ok {
				text, trimmed = rest, true
			}
		}
	}
	return scrub(text, n)
}
