package testserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// introspectToken is the token the fake introspection endpoint knows; it
// looks like one of Hydra's opaque tokens.
const introspectToken = "ory_at_abc.def"

// fakeIntrospection is an httptest introspection endpoint that answers
// with a fixed status, content type and body, and records what it was
// asked.
type fakeIntrospection struct {
	srv *httptest.Server

	status      int
	contentType string
	body        string

	mu     sync.Mutex // guards the fields below
	method string
	path   string
	ctype  string
	token  string
	hint   string
	calls  int
}

func newFakeIntrospection(t *testing.T, status int, contentType, body string) *fakeIntrospection {
	t.Helper()
	f := &fakeIntrospection{status: status, contentType: contentType, body: body}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		f.method, f.path, f.ctype = r.Method, r.URL.Path, r.Header.Get("Content-Type")
		f.token, f.hint = r.PostForm.Get("token"), r.PostForm.Get("token_type_hint")
		f.calls++
		f.mu.Unlock()
		if f.contentType != "" {
			w.Header().Set("Content-Type", f.contentType)
		}
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIntrospection) validator(t *testing.T) *testserver.IntrospectionValidator {
	t.Helper()
	v, err := testserver.NewIntrospectionValidator(f.srv.URL, f.srv.Client())
	require.NoError(t, err)
	return v
}

func TestIntrospectionValidatorActive(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	body, err := json.Marshal(map[string]any{
		"active":     true,
		"client_id":  "my client",
		"scope":      "offline  all",
		"aud":        []string{"https://admin.example", "other"},
		"exp":        exp.Unix(),
		"iat":        exp.Add(-time.Hour).Unix(),
		"sub":        "my client",
		"iss":        "http://127.0.0.1:4444",
		"token_type": "Bearer",
		"token_use":  "access_token",
		"ext":        map[string]any{},
	})
	require.NoError(t, err)
	f := newFakeIntrospection(t, http.StatusOK, "application/json;charset=UTF-8", string(body))
	v := f.validator(t)

	info, err := v.Validate(t.Context(), introspectToken)
	require.NoError(t, err)
	assert.Equal(t, testserver.TokenInfo{
		ClientID:  "my client",
		Scopes:    []string{"offline", "all"},
		Audience:  "https://admin.example other",
		ExpiresAt: time.Unix(exp.Unix(), 0),
	}, info)

	in, err := v.Introspect(t.Context(), introspectToken)
	require.NoError(t, err)
	assert.Equal(t, testserver.Introspection{
		Active:    true,
		ClientID:  "my client",
		Scope:     "offline  all",
		Audience:  testserver.Audience{"https://admin.example", "other"},
		ExpiresAt: exp.Unix(),
		IssuedAt:  exp.Add(-time.Hour).Unix(),
		Subject:   "my client",
		Issuer:    "http://127.0.0.1:4444",
		TokenType: "Bearer",
		TokenUse:  "access_token",
	}, in)

	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, http.MethodPost, f.method)
	assert.Equal(t, testserver.HydraIntrospectPath, f.path)
	assert.Equal(t, "application/x-www-form-urlencoded", f.ctype)
	assert.Equal(t, introspectToken, f.token, "the token must arrive intact, form-encoded")
	assert.Equal(t, "access_token", f.hint)
	assert.Equal(t, 2, f.calls)
}

func TestIntrospectionValidatorAnswers(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        testserver.TokenInfo
		wantInvalid bool   // the error wraps ErrTokenInvalid
		wantErr     string // a substring of the error; "" means no error
	}{
		{
			name: "inactive", status: http.StatusOK, contentType: "application/json",
			body: `{"active":false}`, wantInvalid: true, wantErr: "not active",
		},
		{
			name: "audience as a string", status: http.StatusOK, contentType: "application/json",
			body: `{"active":true,"client_id":"c","aud":"https://admin.example"}`,
			want: testserver.TokenInfo{ClientID: "c", Audience: "https://admin.example"},
		},
		{
			name: "no scope, audience or expiry", status: http.StatusOK, contentType: "application/json",
			body: `{"active":true,"client_id":"c","aud":[]}`,
			want: testserver.TokenInfo{ClientID: "c", Audience: ""},
		},
		{
			name: "null audience", status: http.StatusOK, contentType: "application/json",
			body: `{"active":true,"client_id":"c","aud":null}`,
			want: testserver.TokenInfo{ClientID: "c"},
		},
		{
			name: "no active member", status: http.StatusOK, contentType: "application/json",
			body: `{"client_id":"c"}`, wantErr: `no "active" member`,
		},
		{
			name: "not JSON", status: http.StatusOK, contentType: "application/json",
			body: `<html>` + introspectToken + `</html>`, wantErr: "invalid JSON",
		},
		{
			name: "wrong type", status: http.StatusOK, contentType: "application/json",
			body: `{"active":"yes"}`, wantErr: "malformed answer",
		},
		{
			name: "bad audience", status: http.StatusOK, contentType: "application/json",
			body: `{"active":true,"aud":42}`, wantErr: "malformed answer",
		},
		{
			name: "HTML content type", status: http.StatusOK, contentType: "text/html",
			body: `{"active":true}`, wantErr: `answer of type "text/html"`,
		},
		{
			name: "OAuth error", status: http.StatusBadRequest, contentType: "application/json",
			body:    `{"error":"invalid_request","error_description":"The POST body can not be empty."}`,
			wantErr: "HTTP 400: invalid_request: The POST body can not be empty.",
		},
		{
			name: "server error page", status: http.StatusBadGateway, contentType: "text/html",
			body: `<html>bad gateway ` + introspectToken + `</html>`, wantErr: "HTTP 502",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeIntrospection(t, tt.status, tt.contentType, tt.body).validator(t)
			info, err := v.Validate(t.Context(), introspectToken)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, info)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Equal(t, tt.wantInvalid, errors.Is(err, testserver.ErrTokenInvalid), "errors.Is(err, ErrTokenInvalid)")
			assert.NotContains(t, err.Error(), introspectToken, "the error must not carry the token")
			assert.NotContains(t, err.Error(), "<html>", "the error must not carry the raw body")
			assert.Zero(t, info)
		})
	}
}

func TestIntrospectionValidatorTooLarge(t *testing.T) {
	body := `{"active":true,"scope":"` + strings.Repeat("s ", 1<<20) + `"}`
	v := newFakeIntrospection(t, http.StatusOK, "application/json", body).validator(t)
	_, err := v.Validate(t.Context(), introspectToken)
	require.ErrorContains(t, err, "answer larger than")
}

func TestIntrospectionValidatorUnreachable(t *testing.T) {
	f := newFakeIntrospection(t, http.StatusOK, "application/json", `{"active":true}`)
	v := f.validator(t)
	f.srv.Close()
	_, err := v.Validate(t.Context(), introspectToken)
	require.Error(t, err)
	assert.False(t, errors.Is(err, testserver.ErrTokenInvalid), "an unreachable server must not read as an invalid token")
	assert.NotContains(t, err.Error(), introspectToken)
}

func TestIntrospectionValidatorContext(t *testing.T) {
	f := newFakeIntrospection(t, http.StatusOK, "application/json", `{"active":true}`)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.validator(t).Validate(ctx, introspectToken)
	require.ErrorIs(t, err, context.Canceled)
}

func TestNewIntrospectionValidator(t *testing.T) {
	tests := []struct {
		adminURL string
		want     string // the endpoint; "" means an error
	}{
		{"http://127.0.0.1:4445", "http://127.0.0.1:4445/admin/oauth2/introspect"},
		{"http://127.0.0.1:4445/", "http://127.0.0.1:4445/admin/oauth2/introspect"},
		{"https://hydra.example/base", "https://hydra.example/base/admin/oauth2/introspect"},
		{"", ""},
		{"127.0.0.1:4445", ""},
		{"ftp://127.0.0.1:4445", ""},
		{"http://127.0.0.1:4445?x=1", ""},
		{"http://user:pass@127.0.0.1:4445", ""},
		{"http://%zz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.adminURL, func(t *testing.T) {
			v, err := testserver.NewIntrospectionValidator(tt.adminURL, nil)
			if tt.want == "" {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), "pass@", "the error must not repeat user information")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, v.Endpoint())
		})
	}
}

// TestIntrospectionValidatorProtectsAdmin checks the validator in its
// place: an AdminServer accepts an echo call whose token the introspection
// endpoint calls active and rejects one it calls inactive.
func TestIntrospectionValidatorProtectsAdmin(t *testing.T) {
	active := newFakeIntrospection(t, http.StatusOK, "application/json", `{"active":true,"client_id":"c"}`)
	_, conn := newAdmin(t, testserver.WithValidator(active.validator(t)))
	_, err := testserver.NewEchoClient(conn).Unary(withToken(t.Context(), "authorization", "Bearer "+introspectToken), "hi")
	require.NoError(t, err)

	inactive := newFakeIntrospection(t, http.StatusOK, "application/json", `{"active":false}`)
	admin, conn := newAdmin(t, testserver.WithValidator(inactive.validator(t)))
	_, err = testserver.NewEchoClient(conn).Unary(withToken(t.Context(), "authorization", "Bearer "+introspectToken), "hi")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not active")
	assert.NotContains(t, err.Error(), introspectToken)
	assert.Equal(t, int64(1), admin.Rejected())
}
