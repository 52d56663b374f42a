package authenticator_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
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
	fromFile, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, "", store,
		authenticator.WithSecretSource(authenticator.SecretFromFile(secretFile)))
	require.NoError(t, err)
	t.Setenv("GRPCAUTH_TEST_FORMAT_SECRET", testSecret)
	fromEnv, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, "", store,
		authenticator.WithSecretSource(authenticator.SecretFromEnv("GRPCAUTH_TEST_FORMAT_SECRET")))
	require.NoError(t, err)

	values := map[string]any{
		"static secret":      static,
		"secret from a file": fromFile,
		"secret from env":    fromEnv,
		"file source":        authenticator.SecretFromFile(secretFile),
		"env source":         authenticator.SecretFromEnv("GRPCAUTH_TEST_FORMAT_SECRET"),
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

	require.NoError(t, a.RefreshRejected(ctx, fetchNow(t, a)))
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
	a, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, "", staticFor(ts),
		authenticator.WithSecretSource(authenticator.SecretFromFile(path)))
	require.NoError(t, err)

	// The server has rotated the secret; the file still holds the old one.
	err = a.RefreshCredentials(context.Background())
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
	a, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, "", staticFor(ts),
		authenticator.WithSecretSource(authenticator.SecretFromEnv(name)))
	require.NoError(t, err)

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
			a, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, "", staticFor(ts),
				authenticator.WithSecretSource(tt.source))
			require.NoError(t, err, "a secret source is read at the first refresh, not before")

			err = a.RefreshCredentials(context.Background())
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
