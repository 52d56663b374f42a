package authenticator_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestFormattingHidesSecret(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(testSecret), 0o600))
	store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "http://127.0.0.1:1/token"})

	static := newAuth(t, store)
	fromFile := newAuthWithSecret(t, store, authenticator.SecretFromFile(secretFile))
	t.Setenv("GRPCAUTH_TEST_FORMAT_SECRET", testSecret)
	fromEnv := newAuthWithSecret(t, store, authenticator.SecretFromEnv("GRPCAUTH_TEST_FORMAT_SECRET"))
	flow, err := authenticator.ClientCredentials(testClientID, authenticator.SecretFromValue(testSecret))
	require.NoError(t, err)

	values := map[string]any{
		"client credentials flow": flow,
		"value source":            authenticator.SecretFromValue(testSecret),
		"static secret":           static,
		"secret from a file":      fromFile,
		"secret from env":         fromEnv,
		"file source":             authenticator.SecretFromFile(secretFile),
		"env source":              authenticator.SecretFromEnv("GRPCAUTH_TEST_FORMAT_SECRET"),
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
				out := fmt.Sprintf(verb, v)
				requireNoSecret(t, out)
				assert.NotEmpty(t, out)
			}
			requireNoSecret(t, fmt.Sprint(v))
			requireNoSecret(t, fmt.Sprintf("%v", []any{v}))
			requireNoSecret(t, fmt.Sprintf("%+v", struct{ A any }{v}))
		})
	}
	s := fmt.Sprintf("%v", static)
	assert.Contains(t, s, testEndpoint)
	assert.Contains(t, s, testClientID)
	assert.Contains(t, fmt.Sprintf("%v", fromFile), secretFile, "a file source shows where it reads")
	assert.Contains(t, fmt.Sprintf("%v", fromEnv), "GRPCAUTH_TEST_FORMAT_SECRET")
}

func TestLogsHideSecretAndToken(t *testing.T) {
	var logs testserver.LogBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
	ts := newDefaultTokenServer(t)
	store := configstore.NewStatic(configstore.ClientConfig{
		TokenEndpoint: ts.TokenURL(), Scopes: []string{"all"}, Audience: "aud",
	})
	a := newAuth(t, store, authenticator.WithLogger(logger))
	ctx := context.Background()

	var tokens []string
	require.NoError(t, a.RefreshCredentials(ctx))
	tokens = append(tokens, accessToken(t, fetchNow(t, a)))

	ts.SetFault(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "wrong secret"))
	require.Error(t, a.RefreshCredentials(ctx))
	ts.SetFault(testserver.FaultBody(http.StatusOK, `{"access_token":"leaked-if-logged","token_type":"Bearer","error":"server_error"}`))
	require.Error(t, a.RefreshCredentials(ctx))
	ts.SetFault(nil)

	require.NoError(t, a.Rejected(ctx, fetchNow(t, a)))
	tokens = append(tokens, accessToken(t, fetchNow(t, a)))

	out := logs.String()
	require.Contains(t, out, "token refresh failed", "failures are logged")
	require.Contains(t, out, "requesting token", "requests are logged at debug level")
	requireNoSecret(t, out)
	for _, tok := range tokens {
		assert.NotContains(t, out, tok, "an access token was logged")
	}
	assert.NotContains(t, out, "leaked-if-logged")
}

func TestSecretFromFileIsReadAtEachRefresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client-secret")
	require.NoError(t, os.WriteFile(path, []byte("  old-secret \n"), 0o600))
	ts := newTokenServer(t, testserver.WithClient(testClientID, "new-secret"))
	a := newAuthWithSecret(t, staticFor(ts), authenticator.SecretFromFile(path))

	// The server has rotated the secret; the file still holds the old one.
	err := a.RefreshCredentials(context.Background())
	te := requireTokenError(t, err)
	assert.Equal(t, "invalid_client", te.ErrorCode)
	assert.NotContains(t, err.Error(), "old-secret")
	_, sent := basicCredentials(t, ts.LastRequest().BasicAuthHeader)
	assert.Equal(t, "old-secret", sent, "trimmed of surrounding whitespace")

	// Once the file is rotated too, the next refresh uses the new secret.
	require.NoError(t, os.WriteFile(path, []byte("\tnew-secret\r\n\n"), 0o600))
	require.NoError(t, a.RefreshCredentials(context.Background()))
	_, sent = basicCredentials(t, ts.LastRequest().BasicAuthHeader)
	assert.Equal(t, "new-secret", sent)
	assert.EqualValues(t, 1, ts.Issued())
}

func TestSecretFromEnv(t *testing.T) {
	const name = "GRPCAUTH_TEST_CLIENT_SECRET"
	t.Setenv(name, "  env+secret/value \n")
	ts := newTokenServer(t, testserver.WithClient(testClientID, "env+secret/value"))
	a := newAuthWithSecret(t, staticFor(ts), authenticator.SecretFromEnv(name))

	require.NoError(t, a.RefreshCredentials(context.Background()))
	_, sent := basicCredentials(t, ts.LastRequest().BasicAuthHeader)
	assert.Equal(t, url.QueryEscape("env+secret/value"), sent)

	// A rotated variable is picked up at the next refresh.
	t.Setenv(name, "rotated")
	require.Error(t, a.RefreshCredentials(context.Background()))
	_, sent = basicCredentials(t, ts.LastRequest().BasicAuthHeader)
	assert.Equal(t, "rotated", sent)
}

func TestSecretSourceErrors(t *testing.T) {
	dir := t.TempDir()
	emptyFile := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(emptyFile, nil, 0o600))
	blankFile := filepath.Join(dir, "blank")
	require.NoError(t, os.WriteFile(blankFile, []byte(" \n\t\r\n"), 0o600))
	missingFile := filepath.Join(dir, "missing")
	const blankVar, unsetVar = "GRPCAUTH_TEST_BLANK_SECRET", "GRPCAUTH_TEST_UNSET_SECRET"
	t.Setenv(blankVar, "  \n")
	t.Setenv(unsetVar, "restored after the test")
	require.NoError(t, os.Unsetenv(unsetVar))

	tests := []struct {
		name   string
		source authenticator.SecretSource
		wantIs error
		want   string
	}{
		{name: "empty file", source: authenticator.SecretFromFile(emptyFile), wantIs: authenticator.ErrEmptySecret, want: emptyFile},
		{name: "blank file", source: authenticator.SecretFromFile(blankFile), wantIs: authenticator.ErrEmptySecret, want: blankFile},
		{name: "missing file", source: authenticator.SecretFromFile(missingFile), wantIs: fs.ErrNotExist, want: missingFile},
		{name: "blank variable", source: authenticator.SecretFromEnv(blankVar), wantIs: authenticator.ErrEmptySecret, want: blankVar},
		{name: "unset variable", source: authenticator.SecretFromEnv(unsetVar), want: unsetVar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newDefaultTokenServer(t)
			// A secret source is read at the first refresh, not before:
			// New does not fail.
			a := newAuthWithSecret(t, staticFor(ts), tt.source)

			err := a.RefreshCredentials(context.Background())
			require.Error(t, err)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			assert.Contains(t, err.Error(), tt.want, "the message names where the secret was looked for")
			assert.NotContains(t, err.Error(), "restored after the test")
			assert.Zero(t, ts.Requests(), "no token request without a secret")

			_, err = tt.source.ClientSecret(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestSecretSourcesTrim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(path, []byte("\n  inner space kept \t\n"), 0o600))
	got, err := authenticator.SecretFromFile(path).ClientSecret(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "inner space kept", got)

	t.Setenv("GRPCAUTH_TEST_TRIM_SECRET", "\t inner space kept \n")
	got, err = authenticator.SecretFromEnv("GRPCAUTH_TEST_TRIM_SECRET").ClientSecret(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "inner space kept", got)
}

func TestSecretFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-secret.log")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("x"), 65<<10), 0o600))
	_, err := authenticator.SecretFromFile(path).ClientSecret(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "larger than")
	assert.NotContains(t, err.Error(), "xxxx")
}

// mkfifo makes a named pipe at path with the mkfifo command, skipping the
// test where there is none.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	bin, err := exec.LookPath("mkfifo")
	if err != nil {
		t.Skip("no mkfifo command on this system")
	}
	require.NoError(t, exec.Command(bin, path).Run())
}

// readWithin reads src, failing the test if that takes longer than waitFor:
// the point of these tests is that nothing hangs.
func readWithin(t *testing.T, src authenticator.SecretSource) (string, error) {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := src.ClientSecret(t.Context())
		done <- result{s, err}
	}()
	r := receiveWithin(t, done, "reading the secret")
	return r.s, r.err
}

func TestSecretFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	linkToFIFO := filepath.Join(dir, "link-to-fifo")
	require.NoError(t, os.Symlink(fifo, linkToFIFO))

	tests := []struct{ name, path, want string }{
		{"named pipe without a writer", fifo, "a named pipe"},
		{"symbolic link to a named pipe", linkToFIFO, "a named pipe"},
		{"directory", dir, "a directory"},
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		tests = append(tests, struct{ name, path, want string }{"endless device", "/dev/zero", "a character device"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readWithin(t, authenticator.SecretFromFile(tt.path))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.path)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "want a regular file")
		})
	}
}

func TestSecretFileRefreshDoesNotHangOnAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	mkfifo(t, fifo)
	ts := newDefaultTokenServer(t)
	a := newAuthWithSecret(t, staticFor(ts), authenticator.SecretFromFile(fifo))
	done := make(chan error, 1)
	go func() { done <- a.RefreshCredentials(t.Context()) }()
	err := receiveWithin(t, done, "the refresh")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "named pipe")
	assert.Zero(t, ts.Requests())
}

func TestSecretFileThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real-secret")
	require.NoError(t, os.WriteFile(target, []byte(testSecret+"\n"), 0o600))
	link := filepath.Join(dir, "secret")
	require.NoError(t, os.Symlink(target, link))

	// A symbolic link to a regular file is fine: Kubernetes mounts
	// secrets that way (..data/secret).
	got, err := readWithin(t, authenticator.SecretFromFile(link))
	require.NoError(t, err)
	assert.Equal(t, testSecret, got)
}

func TestSecretFileHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(path, []byte(testSecret), 0o600))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := authenticator.SecretFromFile(path).ClientSecret(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), path)
}

func TestSecretSourcesUnderEveryPrinter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(path, []byte(testSecret), 0o600))
	const name = "GRPCAUTH_TEST_PRINT_SECRET"
	t.Setenv(name, testSecret)
	store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "http://127.0.0.1:1/token"})
	static := newAuth(t, store)

	values := map[string]any{
		"file source":   authenticator.SecretFromFile(path),
		"env source":    authenticator.SecretFromEnv(name),
		"authenticator": static,
	}
	for what, v := range values {
		t.Run(what, func(t *testing.T) {
			var out bytes.Buffer
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
				fmt.Fprintf(&out, verb+"\n", v)
			}
			slog.New(slog.NewTextHandler(&out, nil)).Info("v", "v", v)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("v", "v", v, "group", []any{v})
			b, _ := json.Marshal(v) // an error is fine; the secret in it is not
			out.Write(b)
			requireNoSecret(t, out.String())
			assert.NotContains(t, out.String(), hex.EncodeToString([]byte(testSecret)))
		})
	}
}

// The static secret behind an authenticator is held so that even a verb
// fmt does not apply to strings cannot print it through the struct.
func TestHeldSecretHidesUnderAnyVerb(t *testing.T) {
	src := authenticator.SecretFromValue(" " + testSecret + "\n")
	got, err := src.ClientSecret(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret, got)
	holder := struct {
		name string
		src  authenticator.SecretSource
	}{"x", src}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%T"} {
		fmt.Fprintf(&out, verb+"\n", src)
		fmt.Fprintf(&out, verb+"\n", holder)
		fmt.Fprintf(&out, verb+"\n", &holder)
	}
	slog.New(slog.NewTextHandler(&out, nil)).Info("v", "v", src, "h", holder)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("v", "v", src)
	b, err := json.Marshal(src)
	require.NoError(t, err)
	out.Write(b)
	requireNoSecret(t, out.String())
	assert.NotContains(t, out.String(), hex.EncodeToString([]byte(testSecret)))
}

func TestSecretFromValueEmpty(t *testing.T) {
	_, err := authenticator.SecretFromValue(" \n").ClientSecret(t.Context())
	require.ErrorIs(t, err, authenticator.ErrEmptySecret)
}
