package grpcauth_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

// env is a fake environment for LoadOptions.LookupEnv.
type env map[string]string

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
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

	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
	require.NoError(t, err)

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
	assert.Empty(t, cfg.ClientSecret)

	assert.Equal(t, path, cfg.File())
	assert.Equal(t, path, cfg.Source("endpoint"))
	assert.Equal(t, path, cfg.Source("scopes"))
	assert.Equal(t, grpcauth.SourceDefault, cfg.Source(grpcauth.ClientSecretKey))
}

func TestLoadConfigFileLocation(t *testing.T) {
	home := t.TempDir()
	writeFile(t, home, ".flyte/config.yaml", "admin:\n  endpoint: from-home:443\n")
	other := writeFile(t, t.TempDir(), "other.yaml", "admin:\n  endpoint: from-env:443\n")
	explicit := writeFile(t, t.TempDir(), "explicit.yaml", "admin:\n  endpoint: from-option:443\n")

	tests := []struct {
		name     string
		opts     grpcauth.LoadOptions
		endpoint string
		file     string
		wantErr  string
	}{
		{name: "default file", opts: grpcauth.LoadOptions{HomeDir: home}, endpoint: "from-home:443", file: filepath.Join(home, ".flyte", "config.yaml")},
		{name: "FLYTECTL_CONFIG wins over the default", opts: grpcauth.LoadOptions{HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": other}.lookup}, endpoint: "from-env:443", file: other},
		{name: "File wins over FLYTECTL_CONFIG", opts: grpcauth.LoadOptions{File: explicit, HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": other}.lookup}, endpoint: "from-option:443", file: explicit},
		{name: "missing default file is fine", opts: grpcauth.LoadOptions{HomeDir: t.TempDir()}},
		{name: "no home, no file", opts: grpcauth.LoadOptions{}},
		{name: "empty FLYTECTL_CONFIG counts as unset", opts: grpcauth.LoadOptions{HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": ""}.lookup}, endpoint: "from-home:443", file: filepath.Join(home, ".flyte", "config.yaml")},
		{name: "missing FLYTECTL_CONFIG file is an error", opts: grpcauth.LoadOptions{HomeDir: home, LookupEnv: env{"FLYTECTL_CONFIG": "/no/such/config.yaml"}.lookup}, wantErr: "/no/such/config.yaml: cannot read the config file named by FLYTECTL_CONFIG"},
		{name: "missing File is an error", opts: grpcauth.LoadOptions{File: "/no/such/file.yaml"}, wantErr: "/no/such/file.yaml: cannot read the config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := grpcauth.LoadConfigWith(tt.opts)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.ErrorIs(t, err, fs.ErrNotExist)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.endpoint, cfg.Endpoint)
			assert.Equal(t, tt.file, cfg.File())
		})
	}
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
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{LookupEnv: e.lookup})
	require.NoError(t, err)

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

	assert.Equal(t, "env FLYTE_PLATFORM_URL", cfg.Source("endpoint"))
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", cfg.Source(grpcauth.ClientSecretKey))
	assert.Equal(t, "env FLYTE_CREDENTIALS_SCOPES", cfg.Source("scopes"))
	assert.Equal(t, grpcauth.SourceDefault, cfg.Source("tokenUrl"))
	assert.Empty(t, cfg.File())
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
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{LookupEnv: e.lookup})
	require.NoError(t, err)

	// Explicit fields win over both.
	cfg.ClientID = "explicit-client"
	require.NoError(t, cfg.Set("tokenUrl", "https://flag/token", "flag --token-url"))

	tests := []struct {
		key, value, source string
	}{
		{"endpoint", "env:443", "env FLYTE_PLATFORM_URL"},
		{"insecure", "false", "env FLYTE_PLATFORM_INSECURE"},
		{"clientId", "explicit-client", grpcauth.SourceExplicit},
		{"scopes", "env-scope", "env FLYTE_CREDENTIALS_SCOPES"},
		{"audience", "file-audience", path},
		{"tokenUrl", "https://flag/token", "flag --token-url"},
		{"clientSecretLocation", grpcauth.DefaultClientSecretLocation, grpcauth.SourceDefault},
		{"caCertFilePath", "", grpcauth.SourceDefault},
		{grpcauth.ClientSecretKey, "", grpcauth.SourceDefault},
	}
	settings := map[string]grpcauth.Setting{}
	for _, s := range cfg.Settings() {
		settings[s.Key] = s
	}
	assert.Len(t, settings, len(grpcauth.Keys()))
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			assert.Equal(t, grpcauth.Setting{Key: tt.key, Value: tt.value, Source: tt.source}, settings[tt.key])
		})
	}
}

func TestLoadConfigSecretAssignedAfterLoadIsExplicit(t *testing.T) {
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{LookupEnv: env{"FLYTE_CREDENTIALS_CLIENT_SECRET": "from-env"}.lookup})
	require.NoError(t, err)
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", cfg.Source(grpcauth.ClientSecretKey))

	copied := cfg
	copied.ClientSecret = "changed"
	assert.Equal(t, grpcauth.SourceExplicit, copied.Source(grpcauth.ClientSecretKey))
	assert.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", cfg.Source(grpcauth.ClientSecretKey), "copies do not share changes")

	require.NoError(t, copied.Set("endpoint", "x:1", "flag --endpoint"))
	assert.Equal(t, grpcauth.SourceDefault, cfg.Source("endpoint"), "Set on a copy does not change the original")
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
			_, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
			require.Error(t, err)
			assert.Equal(t, path+tt.want, err.Error())
			var ce *grpcauth.ConfigError
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
			cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestLoadConfigEnvErrors(t *testing.T) {
	_, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{LookupEnv: env{"FLYTE_PLATFORM_INSECURE": "maybe"}.lookup})
	require.Error(t, err)
	assert.Equal(t, `env FLYTE_PLATFORM_INSECURE: insecure: want a boolean, got "maybe"`, err.Error())
}

func TestSetUnknownKey(t *testing.T) {
	var cfg grpcauth.Config
	err := cfg.Set("nope", "x", "test")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown config key "nope"`)
}

func TestConfigRedaction(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	cfg := grpcauth.Config{Endpoint: "dns:///x:443", ClientID: "id", ClientSecret: secret, Scopes: []string{"all"}}

	outputs := map[string]string{
		"String":   cfg.String(),
		"GoString": cfg.GoString(),
		"%v":       fmt.Sprintf("%v", cfg),
		"%+v":      fmt.Sprintf("%+v", cfg),
		"%#v":      fmt.Sprintf("%#v", cfg),
		"Sprint":   fmt.Sprint(cfg),
		"%q":       fmt.Sprintf("%q", cfg),
		"pointer":  fmt.Sprintf("%+v", &cfg),
		"nested":   fmt.Sprintf("%+v", struct{ C grpcauth.Config }{cfg}),
		"settings": fmt.Sprintf("%+v", cfg.Settings()),
	}
	for name, out := range outputs {
		assert.NotContains(t, out, secret, name)
		assert.Contains(t, out, "[REDACTED]", name)
	}
	assert.Contains(t, cfg.String(), `Endpoint: "dns:///x:443"`)
	assert.Contains(t, cfg.String(), `ClientID: "id"`)

	noSecret := grpcauth.Config{}
	assert.Contains(t, noSecret.String(), `ClientSecret: ""}`)
}

func TestConfigErrorUnwrap(t *testing.T) {
	cause := errors.New("cause")
	err := &grpcauth.ConfigError{Source: "f.yaml", Key: "admin.x", Msg: "bad", Err: cause}
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, "f.yaml: admin.x: bad", err.Error())
}

func TestKeysAreFlyteNames(t *testing.T) {
	assert.Equal(t, []string{
		"endpoint", "insecure", "insecureSkipVerify", "caCertFilePath", "authType", "clientId",
		"clientSecretLocation", "clientSecretEnvVar", "scopes", "audience", "useAudienceFromAdmin",
		"tokenUrl", "authorizationHeader", "httpProxyURL", "command", "proxyCommand",
		"maxMessageSizeBytes", "maxRetries", "perRetryTimeout", "maxBackoffDelay", "defaultServiceConfig",
		"tokenRefreshWindow", "pkceConfig.timeout", "pkceConfig.refreshTime",
		"deviceFlowConfig.refreshTime", "deviceFlowConfig.timeout", "deviceFlowConfig.pollInterval",
		"consoleEndpoint", "clientSecret",
	}, grpcauth.Keys())
	for _, k := range grpcauth.Keys() {
		assert.False(t, strings.ContainsAny(k, "_- "), k)
	}
}

// printers renders v every way a program might show it: fmt verbs (right
// and wrong ones), log/slog's Text and JSON handlers, and encoding/json.
func printers(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("cfg", "config", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("cfg", "config", v)
	out["slog text"], out["slog json"] = text.String(), js.String()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	out["json"] = string(b)
	return out
}

// Issue 12, items 1 and 2: the secret, and the credentials and query of a
// URL, reach no printer. slog's JSON handler and encoding/json printed
// ClientSecret before Config implemented LogValue and MarshalJSON.
func TestConfigHidesSecretsFromEveryPrinter(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	cfg := grpcauth.Config{
		Endpoint:        "dns:///x:443",
		ClientID:        "id",
		ClientSecret:    secret,
		HTTPProxyURL:    "http://alice:password@proxy:3128",
		TokenURL:        "https://idp.example/token?api_key=k3y",
		ConsoleEndpoint: "https://bob:hunter2@console.example/#frag",
		Scopes:          []string{"all"},
	}
	leaks := []string{secret, "password", "k3y", "hunter2", "frag", hex.EncodeToString([]byte(secret))}
	values := map[string]any{
		"value":   cfg,
		"pointer": &cfg,
		"nested":  struct{ C grpcauth.Config }{cfg},
	}
	for name, v := range values {
		for how, out := range printers(t, v) {
			for _, leak := range leaks {
				assert.NotContains(t, out, leak, "%s through %s", name, how)
			}
		}
	}
	for _, s := range cfg.Settings() {
		for _, leak := range leaks {
			assert.NotContains(t, s.Value, leak, s.Key)
		}
	}

	var js bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("cfg", "config", cfg)
	assert.Contains(t, js.String(), `"clientSecret":"[REDACTED]"`)
	assert.Contains(t, js.String(), `"httpProxyURL":"http://[REDACTED]@proxy:3128"`)
	assert.Contains(t, js.String(), `"clientId":"id"`)

	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(b, &decoded))
	assert.Equal(t, "[REDACTED]", decoded["clientSecret"])
	assert.Equal(t, "https://idp.example/token?[REDACTED]", decoded["tokenUrl"])
	assert.Equal(t, []any{"all"}, decoded["scopes"])
	assert.Equal(t, float64(grpcauth.DefaultMaxRetries), decoded["maxRetries"])
	assert.Equal(t, map[string]any{"timeout": "2m0s", "refreshTime": "5m0s"}, decoded["pkceConfig"])

	assert.Contains(t, cfg.String(), `HTTPProxyURL: "http://[REDACTED]@proxy:3128"`)
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
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings())

	assert.Equal(t, 32<<20, cfg.MaxMessageSizeBytes)
	assert.Equal(t, 7, cfg.MaxRetries)
	assert.Equal(t, 20*time.Second, cfg.PerRetryTimeout)
	assert.Equal(t, time.Minute, cfg.MaxBackoffDelay)
	assert.JSONEq(t, `{"loadBalancingConfig": [{"round_robin": {}}]}`, cfg.DefaultServiceConfig)
	assert.Equal(t, 5*time.Minute, cfg.TokenRefreshWindow)
	assert.Equal(t, grpcauth.PkceConfig{Timeout: 3 * time.Minute, RefreshTime: 90 * time.Second}, cfg.PkceConfig)
	assert.Equal(t, grpcauth.DeviceFlowConfig{RefreshTime: time.Minute, Timeout: 15 * time.Minute, PollInterval: 2 * time.Second}, cfg.DeviceFlowConfig)
	assert.Equal(t, "https://console.example.com", cfg.ConsoleEndpoint)

	assert.Equal(t, path, cfg.Source("pkceConfig.timeout"))
	assert.Equal(t, path, cfg.Source("deviceFlowConfig.pollInterval"))
	assert.Equal(t, path, cfg.Source("consoleEndpoint"))
	cfg.PkceConfig.Timeout = time.Hour
	assert.Equal(t, grpcauth.SourceExplicit, cfg.Source("pkceConfig.timeout"))
	assert.Equal(t, path, cfg.Source("pkceConfig.refreshTime"), "provenance is per key")
}

func TestLoadConfigDefaultsShown(t *testing.T) {
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{})
	require.NoError(t, err)
	got := map[string]grpcauth.Setting{}
	for _, s := range cfg.Settings() {
		got[s.Key] = s
	}
	for key, want := range map[string]string{
		"maxMessageSizeBytes":           "67108864",
		"maxRetries":                    "4",
		"perRetryTimeout":               "15s",
		"maxBackoffDelay":               "8s",
		"pkceConfig.timeout":            "2m0s",
		"pkceConfig.refreshTime":        "5m0s",
		"deviceFlowConfig.refreshTime":  "5m0s",
		"deviceFlowConfig.timeout":      "10m0s",
		"deviceFlowConfig.pollInterval": "5s",
		"tokenRefreshWindow":            "0s",
	} {
		assert.Equal(t, grpcauth.Setting{Key: key, Value: want, Source: grpcauth.SourceDefault}, got[key])
	}
}

// flyteidl reads "maxRetries: 0" as no retries; so do we.
func TestLoadConfigZeroRetries(t *testing.T) {
	path := writeFile(t, t.TempDir(), "config.yaml", "admin:\n  maxRetries: 0\n")
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
	require.NoError(t, err)
	assert.Negative(t, cfg.MaxRetries)
	for _, s := range cfg.Settings() {
		if s.Key == "maxRetries" {
			assert.Equal(t, grpcauth.Setting{Key: "maxRetries", Value: "0", Source: path}, s)
		}
	}
}

func TestLoadConfigNewEnvVariables(t *testing.T) {
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{LookupEnv: env{
		"FLYTE_CREDENTIALS_COMMAND":       "aws, sso ,token",
		"FLYTE_CREDENTIALS_PROXY_COMMAND": "gcloud,auth,print-identity-token",
		"FLYTE_PLATFORM_CONSOLE_ENDPOINT": "https://console.example.com",
	}.lookup})
	require.NoError(t, err)
	assert.Equal(t, []string{"aws", "sso", "token"}, cfg.Command)
	assert.Equal(t, []string{"gcloud", "auth", "print-identity-token"}, cfg.ProxyCommand)
	assert.Equal(t, "https://console.example.com", cfg.ConsoleEndpoint)
	assert.Equal(t, "env FLYTE_CREDENTIALS_COMMAND", cfg.Source("command"))
	assert.Equal(t, "env FLYTE_CREDENTIALS_PROXY_COMMAND", cfg.Source("proxyCommand"))
	assert.Equal(t, "env FLYTE_PLATFORM_CONSOLE_ENDPOINT", cfg.Source("consoleEndpoint"))
}

func TestSetParsesDurationsAndNumbers(t *testing.T) {
	var cfg grpcauth.Config
	require.NoError(t, cfg.Set("tokenRefreshWindow", "5m", "flag --x"))
	require.NoError(t, cfg.Set("deviceFlowConfig.pollInterval", " 1500ms ", "flag --x"))
	require.NoError(t, cfg.Set("maxMessageSizeBytes", "1024", "flag --x"))
	assert.Equal(t, 5*time.Minute, cfg.TokenRefreshWindow)
	assert.Equal(t, 1500*time.Millisecond, cfg.DeviceFlowConfig.PollInterval)
	assert.Equal(t, 1024, cfg.MaxMessageSizeBytes)

	for _, tt := range []struct{ key, value, want string }{
		{"tokenRefreshWindow", "5", `flag --x: tokenRefreshWindow: want a duration such as 30s or 5m, got "5"`},
		{"tokenRefreshWindow", "-5m", `flag --x: tokenRefreshWindow: want a duration at least 0, got -5m0s`},
		{"maxRetries", "many", `flag --x: maxRetries: want a whole number, got "many"`},
		{"maxRetries", "-1", `flag --x: maxRetries: want a number at least 0, got -1`},
	} {
		err := cfg.Set(tt.key, tt.value, "flag --x")
		require.Error(t, err)
		assert.Equal(t, tt.want, err.Error())
	}
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
		_, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
		require.Error(t, err, tt.content)
		assert.Equal(t, path+tt.want, err.Error())
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
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
	require.NoError(t, err)
	assert.Empty(t, cfg.ClientID, "a misspelt key is not read")
	assert.Zero(t, cfg.PkceConfig.Timeout)
	w := cfg.Warnings()
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
	assert.NotEqual(t, "changed", cfg.Warnings()[0], "Warnings returns a copy")
}

func TestLoadConfigWarningsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("admin:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  unknown%d: x\n", i)
	}
	path := writeFile(t, t.TempDir(), "config.yaml", b.String())
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path})
	require.NoError(t, err)
	w := cfg.Warnings()
	require.Len(t, w, 33)
	assert.Equal(t, path+": 68 more warnings not shown", w[32])
}
