package grpcauth_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

// printConfigEveryWay renders v every way a program might show it: fmt
// verbs (right and wrong ones), log/slog's Text and JSON handlers, and
// encoding/json.
func printConfigEveryWay(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	out["Sprint"] = fmt.Sprint(v)
	out["Sprintln"] = fmt.Sprintln(v)
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("cfg", "config", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("cfg", "config", v)
	out["slog text"], out["slog json"] = text.String(), js.String()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	out["json"] = string(b)
	return out
}

// printConfigSecret is the client secret of the printing tests.
const printConfigSecret = "s3cr3t-value-that-must-not-leak"

// printConfigWithSecrets has a secret, and URLs with credentials, a query
// and a fragment, in every URL field.
func printConfigWithSecrets() grpcauth.Config {
	return grpcauth.Config{
		Endpoint:        "carol:swordfish@flyte.example:443",
		ClientID:        "id",
		ClientSecret:    printConfigSecret,
		HTTPProxyURL:    "http://alice:password@proxy:3128",
		TokenURL:        "https://idp.example/token?api_key=k3y",
		ConsoleEndpoint: "https://bob:hunter2@console.example/#frag",
		Scopes:          []string{"all"},
	}
}

// A limit no method can lift: fmt calls no Format while it reports a
// wrong verb, so a Config inside a struct of no methods, reached through a
// nested pointer and printed with %s, %q or %t (struct{ W *wrapper } where
// wrapper holds a Config), is printed raw. The values below are the ways
// a Config itself is printed.
//
// Issue 12, items 1 and 2: the secret, and the credentials and query of a
// URL, reach no printer. slog's JSON handler and encoding/json printed
// ClientSecret before Config implemented LogValue and MarshalJSON.
func TestPrintConfigHidesSecretsFromEveryPrinter(t *testing.T) {
	cfg := printConfigWithSecrets()
	leaks := []string{
		printConfigSecret, hex.EncodeToString([]byte(printConfigSecret)), strings.ToUpper(hex.EncodeToString([]byte(printConfigSecret))),
		"alice", "password", "bob", "hunter2", "carol", "swordfish", "api_key", "k3y", "frag",
	}
	values := map[string]any{
		"value":          cfg,
		"pointer":        &cfg,
		"nested":         struct{ C grpcauth.Config }{cfg},
		"nested pointer": struct{ C *grpcauth.Config }{&cfg},
		"slice":          []grpcauth.Config{cfg},
		"slice of ptrs":  []*grpcauth.Config{&cfg},
		"map":            map[string]grpcauth.Config{"c": cfg},
		"any":            []any{cfg, &cfg},
	}
	var leaked []string
	for name, v := range values {
		for how, out := range printConfigEveryWay(t, v) {
			for _, leak := range leaks {
				if strings.Contains(out, leak) {
					leaked = append(leaked, fmt.Sprintf("%s through %s shows %q: %s", name, how, leak, out))
				}
			}
			assert.Contains(t, out, "[REDACTED]", "%s through %s shows the Config", name, how)
		}
	}
	slices.Sort(leaked)
	assert.Empty(t, leaked)
}

func TestPrintConfigFmt(t *testing.T) {
	cfg := printConfigWithSecrets()

	v := fmt.Sprintf("%v", cfg)
	assert.True(t, strings.HasPrefix(v, "grpcauth.Config{[REDACTED]@flyte.example:443 false false "), v)
	assert.NotContains(t, v, "HTTPProxyURL:", "%v has no field names")
	assert.Equal(t, v, fmt.Sprint(cfg))
	assert.Equal(t, v, fmt.Sprintf("%v", &cfg))

	for _, verb := range []string{"%+v", "%#v"} {
		out := fmt.Sprintf(verb, cfg)
		assert.True(t, strings.HasPrefix(out, "grpcauth.Config{Endpoint:"), "%s: %s", verb, out)
		assert.Contains(t, out, "Endpoint:[REDACTED]@flyte.example:443 ", verb)
		assert.Contains(t, out, "ClientID:id ", verb)
		assert.Contains(t, out, "HTTPProxyURL:http://[REDACTED]@proxy:3128 ", verb)
		assert.Contains(t, out, "TokenURL:https://idp.example/token?[REDACTED] ", verb)
		assert.Contains(t, out, "ConsoleEndpoint:https://[REDACTED]@console.example/#[REDACTED] ", verb)
		assert.Contains(t, out, "Scopes:[all] ", verb)
		assert.True(t, strings.HasSuffix(out, "ClientSecret:[REDACTED]}"), "%s: %s", verb, out)
	}

	// Without a secret, nothing is redacted and nothing pretends to be.
	var empty grpcauth.Config
	assert.True(t, strings.HasSuffix(fmt.Sprintf("%+v", empty), "ClientSecret:}"), fmt.Sprintf("%+v", empty))
	for how, out := range printConfigEveryWay(t, empty) {
		assert.NotContains(t, out, "[REDACTED]", how)
	}

	// Printing does not change the Config.
	assert.Equal(t, printConfigWithSecrets(), cfg)
}

func TestPrintConfigJSON(t *testing.T) {
	cfg := printConfigWithSecrets()
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"endpoint": "[REDACTED]@flyte.example:443",
		"clientId": "id",
		"scopes": ["all"],
		"tokenUrl": "https://idp.example/token?[REDACTED]",
		"httpProxyURL": "http://[REDACTED]@proxy:3128",
		"consoleEndpoint": "https://[REDACTED]@console.example/#[REDACTED]",
		"clientSecret": "[REDACTED]"
	}`, string(b), "only the fields that are set, under Flyte's names")

	// Durations as text, nested sections as objects of what is set.
	full := grpcauth.Config{
		Insecure:             true,
		AuthType:             "DeviceFlow",
		Command:              []string{"aws", "sso"},
		MaxMessageSizeBytes:  32 << 20,
		MaxRetries:           -1,
		PerRetryTimeout:      20 * time.Second,
		MaxBackoffDelay:      time.Minute,
		DefaultServiceConfig: `{"loadBalancingConfig": [{"round_robin": {}}]}`,
		TokenRefreshWindow:   5 * time.Minute,
		PkceConfig:           grpcauth.PkceConfig{Timeout: 3 * time.Minute, RefreshTime: 90 * time.Second},
		DeviceFlowConfig:     grpcauth.DeviceFlowConfig{PollInterval: 2 * time.Second},
	}
	b, err = json.Marshal(full)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"insecure": true,
		"authType": "DeviceFlow",
		"command": ["aws", "[REDACTED]"],
		"maxMessageSizeBytes": 33554432,
		"maxRetries": -1,
		"perRetryTimeout": "20s",
		"maxBackoffDelay": "1m0s",
		"defaultServiceConfig": "{\"loadBalancingConfig\": [{\"round_robin\": {}}]}",
		"tokenRefreshWindow": "5m0s",
		"pkceConfig": {"timeout": "3m0s", "refreshTime": "1m30s"},
		"deviceFlowConfig": {"pollInterval": "2s"}
	}`, string(b))

	b, err = json.Marshal(grpcauth.Config{})
	require.NoError(t, err)
	assert.Equal(t, "{}", string(b), "a zero Config shows nothing")

	// A pointer and a nested Config marshal the same way.
	b, err = json.Marshal(struct {
		C *grpcauth.Config `json:"c"`
	}{&cfg})
	require.NoError(t, err)
	var decoded map[string]map[string]any
	require.NoError(t, json.Unmarshal(b, &decoded))
	assert.Equal(t, "[REDACTED]", decoded["c"]["clientSecret"])
}

func TestPrintConfigLogValue(t *testing.T) {
	cfg := printConfigWithSecrets()
	v := cfg.LogValue()
	require.Equal(t, slog.KindGroup, v.Kind())
	var keys []string
	for _, a := range v.Group() {
		keys = append(keys, a.Key)
	}
	assert.Equal(t, []string{"clientId", "clientSecret", "consoleEndpoint", "endpoint", "httpProxyURL", "scopes", "tokenUrl"}, keys,
		"the fields that are set, under Flyte's names, sorted")

	var js bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("cfg", "config", cfg)
	assert.Contains(t, js.String(), `"config":{"clientId":"id","clientSecret":"[REDACTED]",`)
	assert.Contains(t, js.String(), `"httpProxyURL":"http://[REDACTED]@proxy:3128"`)

	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("cfg", "config", &cfg)
	assert.Contains(t, text.String(), " config.clientId=id config.clientSecret=[REDACTED] ")
	assert.Contains(t, text.String(), " config.tokenUrl=https://idp.example/token?[REDACTED]")

	var none bytes.Buffer
	slog.New(slog.NewJSONHandler(&none, nil)).Info("cfg", "config", grpcauth.Config{})
	assert.NotContains(t, none.String(), `"config"`, "a zero Config is an empty group, which slog leaves out")
}

// Numbers stay whole numbers in log lines: a message size of 32 MiB is not
// "3.3554432e+07".
func TestPrintConfigLogValueNumbers(t *testing.T) {
	cfg := grpcauth.Config{MaxMessageSizeBytes: 32 << 20, MaxRetries: 7}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("cfg", "config", cfg)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("cfg", "config", cfg)
	assert.Contains(t, text.String(), "config.maxMessageSizeBytes=33554432 ")
	assert.Contains(t, text.String(), "config.maxRetries=7")
	assert.Contains(t, js.String(), `"maxMessageSizeBytes":33554432`)
}
