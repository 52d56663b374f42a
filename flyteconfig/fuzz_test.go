package flyteconfig_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
)

// fuzzConfigSecret is the client secret the fuzzed loads get from the
// environment, as FLYTE_CREDENTIALS_CLIENT_SECRET.
const fuzzConfigSecret = "cfg-S3cr3t+/:%&= frobozz"

// FuzzLoadConfig loads arbitrary bytes as a Flyte config file, with the
// client secret in the environment. Whatever the bytes, Load returns
// within seconds; a failure is a *flyteconfig.Error naming the file, of
// bounded, valid UTF-8 text without the secret; a success keeps the
// environment's secret (the file cannot set or override it), never prints
// it (fmt, log/slog, encoding/json, Settings, SecretSource, Warnings),
// accounts for every key, warns in bounded, valid UTF-8 sentences, and
// loads the same way twice.
func FuzzLoadConfig(f *testing.F) {
	dir := f.TempDir()
	home := f.TempDir() // empty: no default file
	f.Add([]byte("admin:\n  endpoint: dns:///flyte.example:443\n  authType: ClientSecret\n  clientId: propeller\n  scopes: [all]\n"))
	env := func(name string) (string, bool) {
		if name == "FLYTE_CREDENTIALS_CLIENT_SECRET" {
			return fuzzConfigSecret, true
		}
		return "", false
	}
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "config-"+strconv.FormatInt(seq.Add(1), 10)+".yaml")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		defer os.Remove(path)

		load := func() (*flyteconfig.Loaded, error) {
			type result struct {
				l   *flyteconfig.Loaded
				err error
			}
			done := make(chan result, 1)
			go func() {
				l, err := flyteconfig.Load(flyteconfig.Options{File: path, LookupEnv: env, HomeDir: home})
				done <- result{l, err}
			}()
			hang := time.NewTimer(10 * time.Second)
			defer hang.Stop()
			select {
			case r := <-done:
				return r.l, r.err
			case <-hang.C:
				t.Fatalf("Load still running after 10s on %d bytes", len(data))
				return nil, nil
			}
		}
		l, err := load()
		canLeak := strings.Contains(string(data), fuzzConfigSecret)

		if err != nil {
			require.Nil(t, l, "a failed Load returns a Loaded")
			var ce *flyteconfig.Error
			require.ErrorAs(t, err, &ce, "not a *flyteconfig.Error: %T %v", err, err)
			require.Equal(t, path, ce.Source, "the error names the file")
			msg := err.Error()
			require.LessOrEqual(t, len(msg), 1024+len(path), "error text of %d bytes: %q", len(msg), msg)
			require.True(t, utf8.ValidString(msg), "error text is not valid UTF-8: %q", msg)
			if !canLeak {
				require.NotContains(t, msg+fmt.Sprintf("%+v %#v", err, err), fuzzConfigSecret)
			}
			_, again := load()
			require.Error(t, again, "a second load succeeds")
			require.Equal(t, msg, again.Error(), "a second load fails differently")
			return
		}
		require.NotNil(t, l)

		cfg := l.Config
		require.Equal(t, fuzzConfigSecret, cfg.ClientSecret, "the file changed the secret from the environment")
		require.Equal(t, path, l.File)
		_, _ = cfg.Target()   // must not panic, whatever the endpoint
		_, _ = cfg.AuthMode() // nor this
		js, err := json.Marshal(cfg)
		require.NoError(t, err, "encoding/json cannot show the Config")
		var text, jsLog bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("loaded", "config", cfg)
		slog.New(slog.NewJSONHandler(&jsLog, nil)).Info("loaded", "config", &cfg)
		warnings := l.Warnings()
		printed := fmt.Sprintf("%v\n%+v\n%#v\n%s\n%q\n%x\n%v\n%v\n%q\n%v\n%+v\n", cfg, cfg, cfg, &cfg, cfg, cfg, l.Settings(), l.SecretSource(), warnings, l, *l) +
			string(js) + text.String() + jsLog.String()
		if !canLeak {
			require.NotContains(t, printed, fuzzConfigSecret)
		}
		settings := l.Settings()
		require.Len(t, settings, len(flyteconfig.Keys()))
		for i, s := range settings {
			require.Equal(t, flyteconfig.Keys()[i], s.Key, "Settings are in the order of Keys")
			require.NotEmpty(t, s.Source, "key %s has no source", s.Key)
			require.Equal(t, s.Source, l.Source(s.Key))
			if s.Key == "clientSecret" {
				require.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", s.Source)
				require.Equal(t, "[REDACTED]", s.Value)
			}
		}
		require.LessOrEqual(t, len(warnings), 33+len(flyteconfig.Keys())+1, "%d warnings", len(warnings))
		for _, w := range warnings {
			require.True(t, utf8.ValidString(w), "warning is not valid UTF-8: %q", w)
			require.LessOrEqual(t, len(w), 1024+len(path), "warning of %d bytes: %q", len(w), w)
		}

		again, err := load()
		require.NoError(t, err, "a second load fails")
		require.Equal(t, fmt.Sprintf("%+v", cfg), fmt.Sprintf("%+v", again.Config), "a second load differs")
		require.True(t, reflect.DeepEqual(cfg, again.Config), "a second load differs")
		require.Equal(t, settings, again.Settings(), "a second load differs")
		require.Equal(t, warnings, again.Warnings(), "a second load warns differently")
	})
}
