package flyteconfig_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
)

// printers renders v every way a program might show it: fmt verbs (right
// and wrong ones), log/slog's Text and JSON handlers, and encoding/json.
func printers(t testing.TB, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	out["Sprint"] = fmt.Sprint(v)
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("cfg", "config", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("cfg", "config", v)
	out["slog text"], out["slog json"] = text.String(), js.String()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	out["json"] = string(b)
	return out
}

// What Load returns is printed as readily as a Config (log.Printf("%+v",
// loaded)), and must hide the same things: the secret, and the
// credentials, query and fragment of URLs, wherever it keeps them.
func TestLoadedHidesSecretsFromEveryPrinter(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{
		"FLYTE_CREDENTIALS_CLIENT_SECRET": secret,
		"FLYTE_PLATFORM_HTTP_PROXY_URL":   "http://alice:password@proxy:3128",
		"FLYTE_PLATFORM_CONSOLE_ENDPOINT": "https://bob:hunter2@console.example/#frag",
		"FLYTE_CREDENTIALS_CLIENT_ID":     "id",
	}.lookup})
	require.NoError(t, err)
	require.NoError(t, l.Set("tokenUrl", "https://idp.example/token?api_key=k3y", "flag --token-url"))

	secrets := []string{secret, "password", "hunter2", "frag", "k3y", hex.EncodeToString([]byte(secret))}
	values := map[string]any{
		"pointer":  l,
		"value":    *l,
		"nested":   struct{ L *flyteconfig.Loaded }{l},
		"settings": l.Settings(),
		"warnings": l.Warnings(),
	}
	assert.Empty(t, leaks(t, values, secrets), "printing what Load returns shows secrets")
}

// leaks prints each of values every way printers knows, and lists, sorted,
// which way shows which of secrets.
func leaks(t testing.TB, values map[string]any, secrets []string) []string {
	t.Helper()
	var out []string
	for name, v := range values {
		for how, printed := range printers(t, v) {
			var shown []string
			for _, secret := range secrets {
				if strings.Contains(printed, secret) {
					shown = append(shown, secret)
				}
			}
			if shown != nil {
				out = append(out, fmt.Sprintf("%s through %s shows %q", name, how, shown))
			}
		}
	}
	slices.Sort(out)
	return out
}
