package grpcauth_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

// fuzzConfigSecret is the client secret the fuzzed loads get from the
// environment, as FLYTE_CREDENTIALS_CLIENT_SECRET.
const fuzzConfigSecret = "cfg-S3cr3t+/:%&= frobozz"

// FuzzLoadConfig loads arbitrary bytes as a Flyte config file, with the
// client secret in the environment. Whatever the bytes, LoadConfigWith
// returns within seconds; a failure is a *ConfigError naming the file, of
// bounded, valid UTF-8 text without the secret; a success keeps the
// environment's secret (the file cannot set or override it), never prints
// it, accounts for every key, and loads the same way twice.
func FuzzLoadConfig(f *testing.F) {
	dir := f.TempDir()
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

		load := func() (grpcauth.Config, error) {
			type result struct {
				cfg grpcauth.Config
				err error
			}
			done := make(chan result, 1)
			go func() {
				cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{File: path, LookupEnv: env})
				done <- result{cfg, err}
			}()
			hang := time.NewTimer(10 * time.Second)
			defer hang.Stop()
			select {
			case r := <-done:
				return r.cfg, r.err
			case <-hang.C:
				t.Fatalf("LoadConfigWith still running after 10s on %d bytes", len(data))
				return grpcauth.Config{}, nil
			}
		}
		cfg, err := load()
		canLeak := strings.Contains(string(data), fuzzConfigSecret)

		if err != nil {
			var ce *grpcauth.ConfigError
			require.ErrorAs(t, err, &ce, "not a *ConfigError: %T %v", err, err)
			require.Equal(t, path, ce.Source, "the error names the file")
			msg := err.Error()
			require.LessOrEqual(t, len(msg), 1024+len(path), "error text of %d bytes: %q", len(msg), msg)
			require.True(t, utf8.ValidString(msg), "error text is not valid UTF-8: %q", msg)
			if !canLeak {
				require.NotContains(t, msg+fmt.Sprintf("%+v %#v", err, err), fuzzConfigSecret)
			}
			_, again := load()
			require.Equal(t, msg, again.Error(), "a second load fails differently")
			return
		}

		require.Equal(t, fuzzConfigSecret, cfg.ClientSecret, "the file changed the secret from the environment")
		require.Equal(t, path, cfg.File())
		_, _ = cfg.Target() // must not panic, whatever the endpoint
		printed := fmt.Sprintf("%v\n%+v\n%#v\n%s\n%v\n%v", cfg, cfg, cfg, &cfg, cfg.Settings(), cfg.ClientSecretSource())
		if !canLeak {
			require.NotContains(t, printed, fuzzConfigSecret)
		}
		settings := cfg.Settings()
		require.Len(t, settings, len(grpcauth.Keys()))
		for _, s := range settings {
			require.NotEmpty(t, s.Source, "key %s has no source", s.Key)
			if s.Key == grpcauth.ClientSecretKey {
				require.Equal(t, "env FLYTE_CREDENTIALS_CLIENT_SECRET", s.Source)
			}
		}
		again, err := load()
		require.NoError(t, err, "a second load fails")
		require.Equal(t, cfg.String(), again.String(), "a second load differs")
	})
}
