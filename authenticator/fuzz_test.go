package authenticator_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

const (
	fuzzClientID = "fuzz-client"
	fuzzSecret   = "fuzz-S3cr3t+/:%&= plugh"
	// fuzzMaxError bounds the text of a token error: the OAuth fields are
	// clipped, and no body is ever repeated.
	fuzzMaxError = 1024
)

// fuzzAnswer is what the token endpoint answers one fuzz input with.
type fuzzAnswer struct {
	status      int
	contentType string
	body        []byte
}

// FuzzTokenResponse sends arbitrary token endpoint answers (status,
// content type, body) through the whole refresh path: a real
// ClientCredentialsAuthenticator asks a real HTTP token endpoint, then hands
// out the metadata for a call. Whatever the answer, the refresh ends within
// its timeout, a failure is a *TokenError of bounded, valid UTF-8 text that
// holds neither the client secret nor the access token, a success comes only
// from a 2xx answer and yields a value gRPC can carry, and nothing logged
// holds a secret.
func FuzzTokenResponse(f *testing.F) {
	srv, err := testserver.NewTokenServer(testserver.WithClient(fuzzClientID, fuzzSecret))
	require.NoError(f, err)
	f.Cleanup(srv.Close)

	// Each input gets its own token URL, ?fuzz=<n>, so that inputs never
	// see each other's answers.
	var answers sync.Map
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		v, ok := answers.Load(r.URL.Query().Get("fuzz"))
		if !ok {
			return false
		}
		a := v.(fuzzAnswer)
		// One connection per input: no idle connections pile up.
		w.Header().Set("Connection", "close")
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
		return true
	})

	f.Add(200, "application/json", []byte(`{"access_token":"abc","token_type":"Bearer","expires_in":3600}`))
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		code := 200 + int(uint(status)%400) // 200..599; 1xx are not final answers
		id := strconv.FormatInt(seq.Add(1), 10)
		answers.Store(id, fuzzAnswer{status: code, contentType: contentType, body: body})
		defer answers.Delete(id)

		logs := new(testserver.LogBuffer)
		store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: srv.TokenURL() + "?fuzz=" + id})
		a, err := authenticator.NewClientCredentialsAuthenticator("fuzz", fuzzClientID, fuzzSecret, store,
			authenticator.WithTokenTimeout(5*time.Second), authenticator.WithTransientBackoff(time.Millisecond),
			authenticator.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		require.NoError(t, err)
		defer a.Close() // and its idle connections

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = a.RefreshCredentials(ctx)
		require.NoError(t, ctx.Err(), "the refresh outlived its token timeout")

		secrets := fuzzSecretForms(body)
		if err != nil {
			var te *authenticator.TokenError
			require.ErrorAs(t, err, &te, "a failed token request is a *TokenError: %v", err)
			msg := err.Error()
			require.LessOrEqual(t, len(msg), fuzzMaxError, "error text of %d bytes: %q", len(msg), msg)
			require.True(t, utf8.ValidString(msg), "error text is not valid UTF-8: %q", msg)
			texts := []string{msg, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", te)}
			allowed := te.TokenURL + te.ErrorCode + te.ErrorDescription + contentType
			for _, tok := range fuzzAccessTokens(body) {
				if len(tok) >= 8 && !strings.Contains(allowed, tok) {
					secrets = append(secrets, tok)
				}
			}
			fuzzRequireAbsent(t, secrets, append(texts, logs.String())...)
			return
		}

		require.True(t, code >= 200 && code < 300, "HTTP %d was taken for a token", code)
		key, value, ok := credOK(a.Credential(ctx))
		require.True(t, ok, "a successful refresh left no token")
		require.Equal(t, authenticator.DefaultHeaderKey, key)
		typ, tok, found := strings.Cut(value, " ")
		require.True(t, found && typ != "" && tok != "", "value %q is not \"<type> <token>\"", value)
		for i := 0; i < len(value); i++ {
			require.True(t, value[i] >= 0x20 && value[i] <= 0x7e, "value %q cannot travel in gRPC metadata", value)
		}
		if len(tok) >= 8 {
			secrets = append(secrets, tok)
		}
		fuzzRequireAbsent(t, secrets, logs.String(), fmt.Sprintf("%v %+v %#v", a, a, a))
	})
}

// fuzzSecretForms are the shapes of the client secret that must not leak,
// less those the answer itself holds (a server may echo what it likes).
func fuzzSecretForms(body []byte) []string {
	basic := url.QueryEscape(fuzzClientID) + ":" + url.QueryEscape(fuzzSecret)
	var out []string
	for _, s := range []string{fuzzSecret, url.QueryEscape(fuzzSecret), base64.StdEncoding.EncodeToString([]byte(basic))} {
		if !bytes.Contains(body, []byte(s)) {
			out = append(out, s)
		}
	}
	return out
}

// fuzzAccessTokens returns the access_token values the body holds, read
// as JSON and as a form.
func fuzzAccessTokens(body []byte) []string {
	var out []string
	var j struct {
		AccessToken any `json:"access_token"`
	}
	if json.Unmarshal(body, &j) == nil {
		if s, ok := j.AccessToken.(string); ok {
			out = append(out, s)
		}
	}
	if v, err := url.ParseQuery(string(body)); err == nil {
		out = append(out, v["access_token"]...)
	}
	return out
}

func fuzzRequireAbsent(t *testing.T, secrets []string, texts ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Fatalf("%d-byte secret or token leaked: %q", len(s), text[:min(len(text), 300)])
			}
		}
	}
}
