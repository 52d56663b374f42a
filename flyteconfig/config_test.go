package flyteconfig_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/flyteconfig"
)

// env is a fake environment for Options.LookupEnv.
type env map[string]string

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// emptyEnv is an empty environment. The zero Options read the process's
// environment, so every test that means "no environment" passes this.
func emptyEnv(string) (string, bool) { return "", false }

// isolated fills in what o leaves to the process: an empty environment and
// empty home and working directories, so that no test reads the machine's
// Flyte config or FLYTE_* variables.
func isolated(t *testing.T, o flyteconfig.Options) flyteconfig.Options {
	t.Helper()
	if o.LookupEnv == nil {
		o.LookupEnv = emptyEnv
	}
	if o.HomeDir == "" {
		o.HomeDir = t.TempDir()
	}
	if o.Dir == "" && o.File == "" {
		o.Dir = t.TempDir()
	}
	return o
}

// loadIsolated is flyteconfig.Load, isolated from the process.
func loadIsolated(t *testing.T, o flyteconfig.Options) (*flyteconfig.Loaded, error) {
	t.Helper()
	return flyteconfig.Load(isolated(t, o))
}

// loadOnlyFile loads the config file at path, and nothing else.
func loadOnlyFile(t *testing.T, path string) (*flyteconfig.Loaded, error) {
	t.Helper()
	return loadIsolated(t, flyteconfig.Options{File: path})
}

// setHome points os.UserHomeDir at dir ("" makes it fail) for the test.
func setHome(t *testing.T, dir string) {
	t.Helper()
	switch runtime.GOOS {
	case "windows":
		t.Setenv("USERPROFILE", dir)
	case "plan9":
		t.Setenv("home", dir)
	default:
		t.Setenv("HOME", dir)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// settingsByKey indexes l.Settings() by key.
func settingsByKey(l *flyteconfig.Loaded) map[string]flyteconfig.Setting {
	out := map[string]flyteconfig.Setting{}
	for _, s := range l.Settings() {
		out[s.Key] = s
	}
	return out
}

const fullConfig = `
admin:
  # Flyte's keys, every one we read
  endpoint: dns:///flyte.example.com:443
  insecure: false
  insecureSkipVerify: true
  caCertFilePath: /etc/ca.pem
  authType: ClientSecret
  clientId: my-client
  clientSecretLocation: /etc/secrets/my_secret
  clientSecretEnvVar: MY_SECRET
  scopes:
    - all
    - offline
  audience: https://flyte.example.com
  useAudienceFromAdmin: true
  tokenUrl: https://idp.example.com/oauth2/token
  authorizationHeader: flyte-authorization
  httpProxyURL: http://proxy.example.com:3128
  command: ["aws", "sso", "token"]
  proxyCommand: []
  # Flyte keys we do not use
  maxBackoffDelay: 8s
  perRetryTimeout: 15s
  deviceFlowConfig:
    pollInterval: 5s
logger:
  show-source: true
  level: 0
storage:
  type: stow
  stow:
    kind: s3
    config:
      auth_type: iam
console:
  endpoint: https://flyte.example.com/console
`

func TestLoadConfigFile(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", fullConfig)

	l, err := loadOnlyFile(t, path)
	require.NoError(t, err)
	cfg := l.Config

	assert.Equal(t, "dns:///flyte.example.com:443", cfg.Endpoint)
	assert.False(t, cfg.Insecure)
	assert.True(t, cfg.InsecureSkipVerify)
	assert.Equal(t, "/etc/ca.pem", cfg.CACertFilePath)
	assert.Equal(t, "ClientSecret", cfg.AuthType)
	assert.Equal(t, "my-client", cfg.ClientID)
	assert.Equal(t, "/etc/secrets/my_secret", cfg.ClientSecretLocation)
	assert.Equal(t, "MY_SECRET", cfg.ClientSecretEnvVar)
	assert.Equal(t, []string{"all", "offline"}, cfg.Scopes)
	assert.Equal(t, "https://flyte.example.com", cfg.Audience)
	assert.True(t, cfg.UseAudienceFromAdmin)
	assert.Equal(t, "https://idp.example.com/oauth2/token", cfg.TokenURL)
	assert.Equal(t, "flyte-authorization", cfg.AuthorizationHeader)
	assert.Equal(t, "http://proxy.example.com:3128", cfg.HTTPProxyURL)
	assert.Equal(t, []string{"aws", "sso", "token"}, cfg.Command)
	assert.Empty(t, cfg.ProxyCommand)
	assert.Equal(t, "https://flyte.example.com/console", cfg.ConsoleEndpoint)
	assert.Empty(t, cfg.ClientSecret)

	assert.Equal(t, path, l.File)
	assert.Equal(t, path, l.Source("endpoint"))
	assert.Equal(t, path, l.Source("scopes"))
	assert.Equal(t, path, l.Source("consoleEndpoint"))
	assert.Equal(t, "default", l.Source("clientSecret"))
	assert.Empty(t, l.Source("no-such-key"))

	// The file names keys authType ClientSecret does not read.
	assert.Equal(t, []string{
		"command is set (" + path + ") but authType ClientSecret does not read it",
		"deviceFlowConfig.pollInterval is set (" + path + ") but authType ClientSecret does not read it",
	}, l.Warnings())
}

func TestLoadConfigFileLocation(t *testing.T) {
	home := t.TempDir()
	writeFile(t, home, ".flyte/config.yaml", "admin:\n  endpoint: from-home:443\n")
	other := writeFile(t, t.TempDir(), "other.yaml", "admin:\n  endpoint: from-env:443\n")
	explicit := writeFile(t, t.TempDir(), "explicit.yaml", "admin:\n  endpoint: from-option:443\n")

	tests := []struct {
		name     string
		opts     flyteconfig.Options
		noHome   bool // os.UserHomeDir fails
		endpoint string
		file     string
		wantErr  string
	}{
		{name: "default file", opts: flyteconfig.Options{HomeDir: home, LookupEnv: emptyEnv}, endpoint: "from-home:443", file: filepath.Join(home, ".flyte", "config.yaml")},
		{name: "FLYTECTL_CONFIG wins over the default", opts: flyteconfig.Options{HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": other}.lookup}, endpoint: "from-env:443", file: other},
		{name: "File wins over FLYTECTL_CONFIG", opts: flyteconfig.Options{File: explicit, HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": other}.lookup}, endpoint: "from-option:443", file: explicit},
		{name: "missing default file is fine", opts: flyteconfig.Options{HomeDir: t.TempDir(), LookupEnv: emptyEnv}},
		{name: "no home, no file", opts: flyteconfig.Options{LookupEnv: emptyEnv}, noHome: true},
		{name: "empty FLYTECTL_CONFIG counts as unset", opts: flyteconfig.Options{HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": ""}.lookup}, endpoint: "from-home:443", file: filepath.Join(home, ".flyte", "config.yaml")},
		{name: "missing FLYTECTL_CONFIG file is an error", opts: flyteconfig.Options{HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": "/no/such/config.yaml"}.lookup}, wantErr: "/no/such/config.yaml: cannot read the config file named by FLYTECTL_CONFIG"},
		{name: "missing File is an error", opts: flyteconfig.Options{File: "/no/such/file.yaml", LookupEnv: emptyEnv, HomeDir: home}, wantErr: "/no/such/file.yaml: cannot read the config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noHome {
				setHome(t, "")
				_, err := os.UserHomeDir()
				require.Error(t, err, "the test cannot take the home directory away")
			}
			l, err := flyteconfig.Load(tt.opts)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Nil(t, l)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.ErrorIs(t, err, fs.ErrNotExist)
				var ce *flyteconfig.Error
				require.ErrorAs(t, err, &ce)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.endpoint, l.Config.Endpoint)
			assert.Equal(t, tt.file, l.File)
		})
	}
}

// The zero Options are flytekit's: the process's environment and the
// user's home directory.
func TestLoadZeroOptionsReadTheProcess(t *testing.T) {
	home := t.TempDir()
	path := writeFile(t, home, ".flyte/config.yaml", "admin:\n  endpoint: from-home:443\n  clientId: home-client\n")
	setHome(t, home)
	t.Setenv("FLYTECTL_CONFIG", "")
	t.Setenv("FLYTE_PLATFORM_URL", "from-process-env:443")
	t.Setenv("FLYTE_CREDENTIALS_CLIENT_SECRET", "")

	l, err := flyteconfig.Load(flyteconfig.Options{})
	require.NoError(t, err)
	assert.Equal(t, path, l.File)
	assert.Equal(t, "from-process-env:443", l.Config.Endpoint)
	assert.Equal(t, "env FLYTE_PLATFORM_URL", l.Source("endpoint"))
	assert.Equal(t, "home-client", l.Config.ClientID)
	assert.Equal(t, path, l.Source("clientId"))

	// And an explicit empty environment shuts the process's out.
	l, err = flyteconfig.Load(flyteconfig.Options{LookupEnv: emptyEnv})
	require.NoError(t, err)
	assert.Equal(t, "from-home:443", l.Config.Endpoint)

	// FLYTECTL_CONFIG of the process wins over the home directory's file.
	other := writeFile(t, t.TempDir(), "other.yaml", "admin:\n  endpoint: from-flytectl-config:443\n")
	t.Setenv("FLYTECTL_CONFIG", other)
	t.Setenv("FLYTE_PLATFORM_URL", "")
	l, err = flyteconfig.Load(flyteconfig.Options{})
	require.NoError(t, err)
	assert.Equal(t, other, l.File)
	assert.Equal(t, "from-flytectl-config:443", l.Config.Endpoint)
}

func TestLoadConfigEnv(t *testing.T) {
	e := env{
		"FLYTE_PLATFORM_URL":                       "dns:///env.example.com:443",
		"FLYTE_PLATFORM_INSECURE":                  "True",
		"FLYTE_PLATFORM_INSECURE_SKIP_VERIFY":      "1",
		"FLYTE_PLATFORM_CA_CERT_FILE_PATH":         "/env/ca.pem",
		"FLYTE_PLATFORM_HTTP_PROXY_URL":            "http://env-proxy:3128",
		"FLYTE_CREDENTIALS_CLIENT_ID":              "env-client",
		"FLYTE_CREDENTIALS_CLIENT_SECRET":          "env-secret-value",
		"FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION": "/env/secret",
		"FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR":  "ENV_SECRET_VAR",
		"FLYTE_CREDENTIALS_SCOPES":                 "all, offline ,,extra",
		"FLYTE_CREDENTIALS_AUTH_MODE":              "client_credentials",
		"FLYTE_CREDENTIALS_AUDIENCE":               "env-audience",
	}
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: e.lookup})
	require.NoError(t, err)
	cfg := l.Config

	assert.Equal(t, "dns:///env.example.com:443", cfg.Endpoint)
	assert.True(t, cfg.Insecure)
	assert.True(t, cfg.InsecureSkipVerify)
	assert.Equal(t, "/env/ca.pem", cfg.CACertFilePath)
	assert.Equal(t, "http://env-proxy:3128", cfg.HTTPProxyURL)
	assert.Equal(t, "env-client", cfg.ClientID)
	assert.Equal(t, "env-secret-value", cfg.ClientSecret)
	assert.Equal(t, "/env/secret", cfg.ClientSecretLocation)
	assert.Equal(t, "ENV_SECRET_VAR", cfg.ClientSecretEnvVar)
	assert.Equal(t, []string{"all", "offline", "extra"}, cfg.Scopes)
	assert.Equal(t, "client_credentials", cfg.AuthType)
	assert.Equal(t, "env-audience", cfg.Audience)

	assert.Equal(t, "env FLYTE_PLATFORM_URL", l.Source("endpoint"))
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", l.Source("clientSecret"))
	assert.Equal(t, "env FLYTE_CREDENTIALS_SCOPES", l.Source("scopes"))
	assert.Equal(t, "default", l.Source("tokenUrl"))
	assert.Empty(t, l.File)
}

func TestLoadConfigPrecedence(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", `
admin:
  endpoint: file:443
  insecure: true
  clientId: file-client
  scopes: [file-scope]
  audience: file-audience
  tokenUrl: https://file/token
`)
	e := env{
		"FLYTECTL_CONFIG":             path,
		"FLYTE_PLATFORM_URL":          "env:443",
		"FLYTE_PLATFORM_INSECURE":     "false",
		"FLYTE_CREDENTIALS_CLIENT_ID": "env-client",
		"FLYTE_CREDENTIALS_SCOPES":    "env-scope",
		"FLYTE_CREDENTIALS_AUDIENCE":  "", // set but empty: unset
	}
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: e.lookup})
	require.NoError(t, err)
	assert.Equal(t, path, l.File)

	// Explicit fields win over both.
	l.Config.ClientID = "explicit-client"
	require.NoError(t, l.Set("tokenUrl", "https://flag/token", "flag --token-url"))

	tests := []struct {
		key, value, source string
	}{
		{"endpoint", "env:443", "env FLYTE_PLATFORM_URL"},
		{"insecure", "false", "env FLYTE_PLATFORM_INSECURE"},
		{"clientId", "explicit-client", "explicit"},
		{"scopes", "env-scope", "env FLYTE_CREDENTIALS_SCOPES"},
		{"audience", "file-audience", path},
		{"tokenUrl", "https://flag/token", "flag --token-url"},
		{"clientSecretLocation", "/etc/secrets/client_secret", "default"},
		{"caCertFilePath", "", "default"},
		{"clientSecret", "", "default"},
	}
	settings := settingsByKey(l)
	assert.Len(t, settings, len(flyteconfig.Keys()))
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			assert.Equal(t, flyteconfig.Setting{Key: tt.key, Value: tt.value, Source: tt.source}, settings[tt.key])
			assert.Equal(t, tt.source, l.Source(tt.key))
		})
	}
}

func TestLoadConfigSecretAssignedAfterLoadIsExplicit(t *testing.T) {
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_CREDENTIALS_CLIENT_SECRET": "from-env"}.lookup})
	require.NoError(t, err)
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", l.Source("clientSecret"))

	copied := *l
	copied.Config.ClientSecret = "changed"
	assert.Equal(t, "explicit", copied.Source("clientSecret"))
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", l.Source("clientSecret"), "copies do not share changes")
	// Set back to the recorded value, the source is the recorded one again.
	copied.Config.ClientSecret = "from-env"
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", copied.Source("clientSecret"))

	require.NoError(t, copied.Set("endpoint", "x:1", "flag --endpoint"))
	assert.Equal(t, "flag --endpoint", copied.Source("endpoint"))
	assert.Equal(t, "default", l.Source("endpoint"), "Set on a copy does not change the original")
	assert.Empty(t, l.Config.Endpoint)
	// The same value assigned to the original in Go is explicit there: the
	// copy's flag is the copy's.
	l.Config.Endpoint = "x:1"
	assert.Equal(t, "explicit", l.Source("endpoint"), "Set on a copy does not change the original")
	// Even a Set to the value the original already has.
	require.NoError(t, copied.Set("clientSecret", "from-env", "flag --client-secret"))
	assert.Equal(t, "flag --client-secret", copied.Source("clientSecret"))
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", l.Source("clientSecret"), "Set on a copy does not change the original")
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // the error after the file's path
	}{
		{
			name:    "malformed YAML",
			content: "admin:\n  endpoint: x\n   insecure: true\n",
			want:    ": malformed YAML: line 3: mapping values are not allowed in this context",
		},
		{
			name:    "tab indentation",
			content: "admin:\n\tendpoint: x\n",
			want:    ": malformed YAML: line 2: found character that cannot start any token",
		},
		{
			name:    "boolean",
			content: "admin:\n  endpoint: x\n  insecure: maybe\n",
			want:    `: admin.insecure: want a boolean, got "maybe" (line 3)`,
		},
		{
			name:    "boolean from a list",
			content: "admin:\n  insecureSkipVerify: [true]\n",
			want:    `: admin.insecureSkipVerify: want a boolean, got a list (line 2)`,
		},
		{
			name:    "string from a mapping",
			content: "admin:\n  endpoint:\n    host: x\n",
			want:    `: admin.endpoint: want a string, got a mapping (line 3)`,
		},
		{
			name:    "string from a boolean",
			content: "admin:\n  clientId: true\n",
			want:    `: admin.clientId: want a string, got the boolean true (line 2)`,
		},
		{
			name:    "list from a mapping",
			content: "admin:\n  scopes:\n    all: true\n",
			want:    `: admin.scopes: want a list of strings, got a mapping (line 3)`,
		},
		{
			name:    "list item",
			content: "admin:\n  scopes:\n    - all\n    - [nested]\n",
			want:    `: admin.scopes[1]: want a string, got a list (line 4)`,
		},
		{
			name:    "command from a string",
			content: "admin:\n  command: aws sso\n",
			want:    `: admin.command: want a list of strings, got "aws sso" (line 2)`,
		},
		{
			name:    "admin not a mapping",
			content: "admin: dns:///x:443\n",
			want:    `: admin: want a mapping, got "dns:///x:443" (line 1)`,
		},
		{
			name:    "top level not a mapping",
			content: "- admin\n",
			want:    `: want a mapping of sections (admin:, logger:, …), got a list (line 1)`,
		},
		{
			name:    "duplicate key",
			content: "admin:\n  endpoint: a:1\n  endpoint: b:1\n",
			want:    `: admin.endpoint: defined twice, first on line 2 (line 3)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "config.yaml", tt.content)
			l, err := loadOnlyFile(t, path)
			require.Error(t, err)
			assert.Nil(t, l)
			assert.Equal(t, path+tt.want, err.Error())
			var ce *flyteconfig.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, path, ce.Source)
		})
	}
}

func TestLoadConfigLenient(t *testing.T) {
	tests := []struct {
		name    string
		content string
		check   func(t *testing.T, cfg grpcauth.Config)
	}{
		{"empty file", "", func(t *testing.T, cfg grpcauth.Config) { assert.Empty(t, cfg.Endpoint) }},
		{"comments only", "# nothing\n", func(t *testing.T, cfg grpcauth.Config) { assert.Empty(t, cfg.Endpoint) }},
		{"no admin section", "logger:\n  level: 4\n", func(t *testing.T, cfg grpcauth.Config) { assert.Empty(t, cfg.Endpoint) }},
		{"empty admin section", "admin:\n", func(t *testing.T, cfg grpcauth.Config) { assert.Empty(t, cfg.Endpoint) }},
		{"numeric client id", "admin:\n  clientId: 12345\n", func(t *testing.T, cfg grpcauth.Config) { assert.Equal(t, "12345", cfg.ClientID) }},
		{"yes as a boolean", "admin:\n  insecure: yes\n", func(t *testing.T, cfg grpcauth.Config) { assert.True(t, cfg.Insecure) }},
		{"quoted boolean", "admin:\n  insecure: \"true\"\n", func(t *testing.T, cfg grpcauth.Config) { assert.True(t, cfg.Insecure) }},
		{"null value", "admin:\n  clientSecretLocation: ~\n", func(t *testing.T, cfg grpcauth.Config) { assert.Empty(t, cfg.ClientSecretLocation) }},
		{"scopes as one string", "admin:\n  scopes: all, offline\n", func(t *testing.T, cfg grpcauth.Config) {
			assert.Equal(t, []string{"all", "offline"}, cfg.Scopes)
		}},
		{"aliases", "common: &ep dns:///x:443\nadmin:\n  endpoint: *ep\n", func(t *testing.T, cfg grpcauth.Config) {
			assert.Equal(t, "dns:///x:443", cfg.Endpoint)
		}},
		{"a secret key in the file is ignored", "admin:\n  clientSecret: nope\n", func(t *testing.T, cfg grpcauth.Config) {
			assert.Empty(t, cfg.ClientSecret)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "config.yaml", tt.content)
			l, err := loadOnlyFile(t, path)
			require.NoError(t, err)
			assert.Equal(t, path, l.File)
			tt.check(t, l.Config)
		})
	}
}

func TestLoadConfigEnvErrors(t *testing.T) {
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_PLATFORM_INSECURE": "maybe"}.lookup})
	require.Error(t, err)
	assert.Nil(t, l)
	assert.Equal(t, `env FLYTE_PLATFORM_INSECURE: insecure: want a boolean, got "maybe"`, err.Error())
	var ce *flyteconfig.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, flyteconfig.Error{Source: "env FLYTE_PLATFORM_INSECURE", Key: "insecure", Msg: `want a boolean, got "maybe"`}, *ce)
}

func TestSetUnknownKey(t *testing.T) {
	var l flyteconfig.Loaded
	err := l.Set("nope", "x", "test")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown config key "nope"`)
}

// Settings shows the secret and the credentials of URLs redacted; the
// printing of Config itself is tested in the root package
// (config_print_test.go).
func TestSettingsRedaction(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{
		"FLYTE_CREDENTIALS_CLIENT_SECRET": secret,
		"FLYTE_PLATFORM_HTTP_PROXY_URL":   "http://alice:password@proxy:3128",
		"FLYTE_PLATFORM_CONSOLE_ENDPOINT": "https://bob:hunter2@console.example/#frag",
	}.lookup})
	require.NoError(t, err)
	l.Config.TokenURL = "https://idp.example/token?api_key=k3y"
	l.Config.Endpoint = "carol:swordfish@flyte.example:443"

	settings := settingsByKey(l)
	assert.Equal(t, flyteconfig.Setting{Key: "clientSecret", Value: "[REDACTED]", Source: "env FLYTE_CREDENTIALS_CLIENT_SECRET"}, settings["clientSecret"])
	assert.Equal(t, flyteconfig.Setting{Key: "httpProxyURL", Value: "http://[REDACTED]@proxy:3128", Source: "env FLYTE_PLATFORM_HTTP_PROXY_URL"}, settings["httpProxyURL"])
	assert.Equal(t, flyteconfig.Setting{Key: "consoleEndpoint", Value: "https://[REDACTED]@console.example/#[REDACTED]", Source: "env FLYTE_PLATFORM_CONSOLE_ENDPOINT"}, settings["consoleEndpoint"])
	assert.Equal(t, flyteconfig.Setting{Key: "tokenUrl", Value: "https://idp.example/token?[REDACTED]", Source: "explicit"}, settings["tokenUrl"])
	assert.Equal(t, flyteconfig.Setting{Key: "endpoint", Value: "[REDACTED]@flyte.example:443", Source: "explicit"}, settings["endpoint"])

	leaks := []string{secret, "alice", "password", "bob", "hunter2", "frag", "k3y", "carol", "swordfish"}
	shown := fmt.Sprintf("%v %+v %#v %s %q", l.Settings(), l.Settings(), l.Settings(), l.Settings(), l.Settings()) +
		l.SecretSource() + strings.Join(l.Warnings(), "\n")
	for _, leak := range leaks {
		assert.NotContains(t, shown, leak)
	}
}

func TestErrorUnwrap(t *testing.T) {
	cause := errors.New("cause")
	err := &flyteconfig.Error{Source: "f.yaml", Key: "admin.x", Msg: "bad", Err: cause}
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, "f.yaml: admin.x: bad", err.Error())
	assert.Equal(t, "f.yaml: admin.x: bad (line 7)", (&flyteconfig.Error{Source: "f.yaml", Key: "admin.x", Line: 7, Msg: "bad"}).Error())
	assert.Equal(t, "f.yaml: bad", (&flyteconfig.Error{Source: "f.yaml", Msg: "bad"}).Error())
}

func TestKeysAreFlyteNames(t *testing.T) {
	assert.Equal(t, []string{
		"endpoint", "insecure", "insecureSkipVerify", "caCertFilePath", "authType", "clientId",
		"clientSecretLocation", "clientSecretEnvVar", "scopes", "audience", "audienceParam", "useAudienceFromAdmin",
		"tokenUrl", "authorizationHeader", "httpProxyURL", "command", "proxyCommand",
		"maxMessageSizeBytes", "maxRetries", "perRetryTimeout", "maxBackoffDelay", "defaultServiceConfig",
		"tokenRefreshWindow", "tokenCache", "pkceConfig.timeout", "pkceConfig.refreshTime", "pkceConfig.authParams", "pkceConfig.callbackPage",
		"deviceFlowConfig.refreshTime", "deviceFlowConfig.timeout", "deviceFlowConfig.pollInterval",
		"consoleEndpoint", "clientSecret",
	}, flyteconfig.Keys())
	for _, k := range flyteconfig.Keys() {
		assert.False(t, strings.ContainsAny(k, "_- "), k)
	}
	keys := flyteconfig.Keys()
	keys[0] = "changed"
	assert.Equal(t, "endpoint", flyteconfig.Keys()[0], "Keys returns a copy")
}

const newKeysConfig = `
admin:
  endpoint: dns:///flyte.example.com:443
  maxMessageSizeBytes: 33554432
  maxRetries: 7
  perRetryTimeout: 20s
  maxBackoffDelay: 1m
  defaultServiceConfig: '{"loadBalancingConfig": [{"round_robin": {}}]}'
  tokenRefreshWindow: 5m
  pkceConfig:
    timeout: 3m
    refreshTime: 90s
  deviceFlowConfig:
    refreshTime: 1m
    timeout: 15m
    pollInterval: 2s
console:
  endpoint: https://console.example.com
`

func TestLoadConfigConnectionAndFlowKeys(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", newKeysConfig)
	l, err := loadOnlyFile(t, path)
	require.NoError(t, err)
	// No warning about the file itself; the deviceFlowConfig keys are
	// unused by the default flow (Pkce), and Warnings says so.
	assert.Equal(t, []string{
		"deviceFlowConfig.refreshTime is set (" + path + ") but no authType is set, so the default browser login (Pkce) does not read it",
		"deviceFlowConfig.timeout is set (" + path + ") but no authType is set, so the default browser login (Pkce) does not read it",
		"deviceFlowConfig.pollInterval is set (" + path + ") but no authType is set, so the default browser login (Pkce) does not read it",
	}, l.Warnings())
	l.Config.AuthType = "DeviceFlow"
	assert.Equal(t, []string{
		"pkceConfig.timeout is set (" + path + ") but authType DeviceFlow does not read it",
		"pkceConfig.refreshTime is set (" + path + ") but authType DeviceFlow does not read it",
	}, l.Warnings())
	l.Config.AuthType = ""

	cfg := l.Config
	assert.Equal(t, 32<<20, cfg.MaxMessageSizeBytes)
	assert.Equal(t, 7, cfg.MaxRetries)
	assert.Equal(t, 20*time.Second, cfg.PerRetryTimeout)
	assert.Equal(t, time.Minute, cfg.MaxBackoffDelay)
	assert.JSONEq(t, `{"loadBalancingConfig": [{"round_robin": {}}]}`, cfg.DefaultServiceConfig)
	assert.Equal(t, 5*time.Minute, cfg.TokenRefreshWindow)
	assert.Equal(t, grpcauth.PkceConfig{Timeout: 3 * time.Minute, RefreshTime: 90 * time.Second}, cfg.PkceConfig)
	assert.Equal(t, grpcauth.DeviceFlowConfig{RefreshTime: time.Minute, Timeout: 15 * time.Minute, PollInterval: 2 * time.Second}, cfg.DeviceFlowConfig)
	assert.Equal(t, "https://console.example.com", cfg.ConsoleEndpoint)

	assert.Equal(t, path, l.Source("pkceConfig.timeout"))
	assert.Equal(t, path, l.Source("deviceFlowConfig.pollInterval"))
	assert.Equal(t, path, l.Source("consoleEndpoint"))
	l.Config.PkceConfig.Timeout = time.Hour
	assert.Equal(t, "explicit", l.Source("pkceConfig.timeout"))
	assert.Equal(t, path, l.Source("pkceConfig.refreshTime"), "provenance is per key")
}

func TestLoadConfigDefaultsShown(t *testing.T) {
	l, err := loadIsolated(t, flyteconfig.Options{})
	require.NoError(t, err)
	assert.Empty(t, l.File)
	got := settingsByKey(l)
	for key, want := range map[string]string{
		"maxMessageSizeBytes":           "67108864",
		"maxRetries":                    "4",
		"perRetryTimeout":               "15s",
		"maxBackoffDelay":               "8s",
		"pkceConfig.timeout":            "2m0s",
		"pkceConfig.refreshTime":        "lifetime/5, at most 10s",
		"deviceFlowConfig.refreshTime":  "lifetime/5, at most 10s",
		"deviceFlowConfig.timeout":      "10m0s",
		"deviceFlowConfig.pollInterval": "5s",
		"tokenRefreshWindow":            "lifetime/5, at most 10s",
		"clientSecretLocation":          "/etc/secrets/client_secret",
	} {
		assert.Equal(t, flyteconfig.Setting{Key: key, Value: want, Source: "default"}, got[key])
	}
	// Nothing set, nothing to warn about: the default clientSecretLocation
	// is not "set".
	assert.Empty(t, l.Warnings())
}

// flyteidl reads "maxRetries: 0" as no retries; so do we.
func TestLoadConfigZeroRetries(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", "admin:\n  maxRetries: 0\n")
	l, err := loadOnlyFile(t, path)
	require.NoError(t, err)
	assert.Negative(t, l.Config.MaxRetries)
	assert.Equal(t, flyteconfig.Setting{Key: "maxRetries", Value: "0", Source: path}, settingsByKey(l)["maxRetries"])

	require.NoError(t, l.Set("maxRetries", "0", "flag --max-retries"))
	assert.Negative(t, l.Config.MaxRetries, "Set reads 0 as no retries too")
	assert.Equal(t, flyteconfig.Setting{Key: "maxRetries", Value: "0", Source: "flag --max-retries"}, settingsByKey(l)["maxRetries"])
}

func TestLoadConfigNewEnvVariables(t *testing.T) {
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{
		"FLYTE_CREDENTIALS_COMMAND":       "aws, sso ,token",
		"FLYTE_CREDENTIALS_PROXY_COMMAND": "gcloud,auth,print-identity-token",
		"FLYTE_PLATFORM_CONSOLE_ENDPOINT": "https://console.example.com",
	}.lookup})
	require.NoError(t, err)
	assert.Equal(t, []string{"aws", "sso", "token"}, l.Config.Command)
	assert.Equal(t, []string{"gcloud", "auth", "print-identity-token"}, l.Config.ProxyCommand)
	assert.Equal(t, "https://console.example.com", l.Config.ConsoleEndpoint)
	assert.Equal(t, "env FLYTE_CREDENTIALS_COMMAND", l.Source("command"))
	assert.Equal(t, "env FLYTE_CREDENTIALS_PROXY_COMMAND", l.Source("proxyCommand"))
	assert.Equal(t, "env FLYTE_PLATFORM_CONSOLE_ENDPOINT", l.Source("consoleEndpoint"))
}

func TestSetParsesDurationsAndNumbers(t *testing.T) {
	var l flyteconfig.Loaded
	require.NoError(t, l.Set("tokenRefreshWindow", "5m", "flag --x"))
	require.NoError(t, l.Set("deviceFlowConfig.pollInterval", " 1500ms ", "flag --x"))
	require.NoError(t, l.Set("maxMessageSizeBytes", "1024", "flag --x"))
	assert.Equal(t, 5*time.Minute, l.Config.TokenRefreshWindow)
	assert.Equal(t, 1500*time.Millisecond, l.Config.DeviceFlowConfig.PollInterval)
	assert.Equal(t, 1024, l.Config.MaxMessageSizeBytes)
	assert.Equal(t, "flag --x", l.Source("deviceFlowConfig.pollInterval"))

	for _, tt := range []struct{ key, value, want string }{
		{"tokenRefreshWindow", "5", `flag --x: tokenRefreshWindow: want a duration such as 30s or 5m, got "5"`},
		{"tokenRefreshWindow", "-5m", `flag --x: tokenRefreshWindow: want a duration at least 0, got -5m0s`},
		{"maxRetries", "many", `flag --x: maxRetries: want a whole number, got "many"`},
		{"maxRetries", "-1", `flag --x: maxRetries: want a number at least 0, got -1`},
	} {
		err := l.Set(tt.key, tt.value, "flag --x")
		require.Error(t, err)
		assert.Equal(t, tt.want, err.Error())
		var ce *flyteconfig.Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, tt.key, ce.Key)
	}
	assert.Equal(t, 5*time.Minute, l.Config.TokenRefreshWindow, "a refused value changes nothing")
}

func TestLoadConfigNewKeyErrors(t *testing.T) {
	tests := []struct{ content, want string }{
		{"admin:\n  tokenRefreshWindow: 300\n", `: admin.tokenRefreshWindow: want a duration such as 30s or 5m, got the number 300 (line 2)`},
		{"admin:\n  pkceConfig:\n    timeout: soon\n", `: admin.pkceConfig.timeout: want a duration such as 30s or 5m, got "soon" (line 3)`},
		{"admin:\n  pkceConfig: 5m\n", `: admin.pkceConfig: want a mapping, got "5m" (line 2)`},
		{"admin:\n  deviceFlowConfig:\n    timeout: 1m\n    timeout: 2m\n", `: admin.deviceFlowConfig.timeout: defined twice, first on line 3 (line 4)`},
		{"admin:\n  maxRetries: [1]\n", `: admin.maxRetries: want a whole number, got a list (line 2)`},
		{"admin:\n  maxMessageSizeBytes: -5\n", `: admin.maxMessageSizeBytes: want a number at least 0, got -5 (line 2)`},
		{"console:\n  endpoint: [x]\n", `: console.endpoint: want a string, got a list (line 2)`},
	}
	for _, tt := range tests {
		path := writeFile(t, t.TempDir(), "config.yaml", tt.content)
		_, err := loadOnlyFile(t, path)
		require.Error(t, err, tt.content)
		assert.Equal(t, path+tt.want, err.Error())
		var ce *flyteconfig.Error
		assert.ErrorAs(t, err, &ce, tt.content)
	}
}

// Issue 16: an unknown admin key is a warning naming the closest known
// key, not an error.
func TestLoadConfigWarnsAboutUnknownKeys(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", `admin:
  endpoint: dns:///x:443
  clientID: typo
  scoeps: [all]
  pkceConfig:
    timout: 1m
  frobnicate: true
  useAuth: true
  clientSecret: do-not-put-me-here
  consoleEndpoint: https://c
  pkceConfig.timeout: 1m
`)
	l, err := loadOnlyFile(t, path)
	require.NoError(t, err)
	assert.Empty(t, l.Config.ClientID, "a misspelt key is not read")
	assert.Zero(t, l.Config.PkceConfig.Timeout)
	w := l.Warnings()
	require.Len(t, w, 8, "%q", w)
	assert.Equal(t, path+":3: unknown key admin.clientID, ignored; did you mean clientId?", w[0])
	assert.Equal(t, path+":4: unknown key admin.scoeps, ignored; did you mean scopes?", w[1])
	assert.Equal(t, path+":6: unknown key admin.pkceConfig.timout, ignored; did you mean timeout?", w[2])
	assert.Equal(t, path+":7: unknown key admin.frobnicate, ignored", w[3])
	assert.Contains(t, w[4], "admin.useAuth is deprecated")
	assert.Contains(t, w[5], "admin.clientSecret is not read from the file")
	assert.Contains(t, w[6], "the console endpoint is console.endpoint")
	assert.Contains(t, w[7], "unknown key admin.pkceConfig.timeout")
	for _, s := range w {
		assert.NotContains(t, s, "do-not-put-me-here")
	}

	w[0] = "changed"
	assert.NotEqual(t, "changed", l.Warnings()[0], "Warnings returns a copy")
}

func TestLoadConfigWarningsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("admin:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  unknown%d: x\n", i)
	}
	path := writeFile(t, t.TempDir(), "config.yaml", b.String())
	l, err := loadOnlyFile(t, path)
	require.NoError(t, err)
	w := l.Warnings()
	require.Len(t, w, 33)
	assert.Equal(t, path+": 68 more warnings not shown", w[32])
}

// Warnings names unused keys by the flow actually chosen: an alias of
// authType by its canonical name, a clientId without authType as
// ClientSecret. (unused_test.go covers the rest of the old UnusedKeys.)
func TestWarningsUnusedKeysByFlow(t *testing.T) {
	alias := &flyteconfig.Loaded{Config: grpcauth.Config{AuthType: "external_process", Scopes: []string{"all"}, Command: []string{"x"}}}
	assert.Equal(t, []string{"scopes is set (explicit) but authType ExternalCommand does not read it"}, alias.Warnings())

	withID := &flyteconfig.Loaded{Config: grpcauth.Config{ClientID: "id", PkceConfig: grpcauth.PkceConfig{Timeout: time.Minute}}}
	assert.Equal(t, []string{"pkceConfig.timeout is set (explicit) but authType ClientSecret does not read it"}, withID.Warnings())
}

// Warnings carries the error of an authType no Flyte client knows (what
// Config.CheckFlow returned in the root package before), and nothing about
// unused keys then.
func TestWarningsUnknownAuthType(t *testing.T) {
	magic := &flyteconfig.Loaded{Config: grpcauth.Config{AuthType: "magic", Command: []string{"x"}}}
	_, flowErr := magic.Config.AuthMode()
	require.Error(t, flowErr)
	w := magic.Warnings()
	require.Len(t, w, 1, "an unknown authType, and no guess about its keys: %q", w)
	assert.Contains(t, w[0], `unknown authType "magic": want ClientSecret, Pkce, DeviceFlow, ExternalCommand or Passthrough`)
	assert.Contains(t, flowErr.Error(), w[0], "the warning is AuthMode's error")

	path := writeFile(t, t.TempDir(), "config.yaml", "admin:\n  authType: Magic\n  frobnicate: 1\n")
	l, err := loadOnlyFile(t, path)
	require.NoError(t, err, "an unknown authType is not a load error")
	w = l.Warnings()
	require.Len(t, w, 2, "%q", w)
	assert.Equal(t, path+":3: unknown key admin.frobnicate, ignored", w[0])
	assert.Contains(t, w[1], `unknown authType "Magic": want ClientSecret, Pkce, DeviceFlow, ExternalCommand or Passthrough`)

	for _, ok := range []grpcauth.Config{{}, {ClientID: "x"}, {AuthType: "standard"}, {AuthType: " DeviceFlow "}} {
		assert.Empty(t, (&flyteconfig.Loaded{Config: ok}).Warnings(), "%+v", ok)
	}
}

// SecretSource names where a secret from the environment came from,
// never the secret. (secret_source_test.go covers the other sources.)
func TestSecretSourceFromEnv(t *testing.T) {
	const secret = "env-secret-value"
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret}.lookup})
	require.NoError(t, err)
	assert.Equal(t, "Config.ClientSecret (from env FLYTE_CREDENTIALS_CLIENT_SECRET)", l.SecretSource())
	assert.NotContains(t, l.SecretSource(), secret)
}

// The reads of a Loaded are safe for concurrent use (run with -race):
// one that Load made, and one written as a literal.
func TestLoadedConcurrentReads(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", fullConfig)
	loaded, err := loadIsolated(t, flyteconfig.Options{File: path, LookupEnv: env{"FLYTE_CREDENTIALS_CLIENT_SECRET": "s"}.lookup})
	require.NoError(t, err)
	for name, l := range map[string]*flyteconfig.Loaded{
		"loaded":  loaded,
		"literal": {Config: grpcauth.Config{Endpoint: "x:443", ClientID: "id", Command: []string{"x"}}},
	} {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 20 {
						_ = l.Settings()
						_ = l.Warnings()
						_ = l.SecretSource()
						_ = l.Source("endpoint")
						_ = fmt.Sprint(l.Config)
						_ = fmt.Sprint(l)
						_ = flyteconfig.Keys()
					}
				})
			}
			wg.Wait()
		})
	}
}
