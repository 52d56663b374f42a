package testserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

const (
	authClient   = "public-client"
	authRedirect = "http://127.0.0.1:1/callback"
)

func newAuthServer(t *testing.T) *testserver.AuthorizationServer {
	t.Helper()
	s, err := testserver.NewAuthorizationServer(testserver.WithPublicClient(authClient, authRedirect))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// noRedirects is an HTTP client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize sends an authorization request and returns the status and, for
// a redirect, the query of its Location.
func authorize(t *testing.T, s *testserver.AuthorizationServer, q url.Values) (int, url.Values) {
	t.Helper()
	resp, err := noRedirects.Get(s.AuthorizeURL() + "?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, authRedirect, loc.Scheme+"://"+loc.Host+loc.Path)
	return resp.StatusCode, loc.Query()
}

func authQuery(verifier string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {authClient},
		"redirect_uri":          {authRedirect},
		"state":                 {"st"},
		"scope":                 {"openid offline"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
}

// tokenPost posts a form to the token endpoint and decodes the answer.
func tokenPost(t *testing.T, s *testserver.AuthorizationServer, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(s.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestAuthorizationCodeAndRefresh(t *testing.T) {
	s := newAuthServer(t)
	verifier := oauth2.GenerateVerifier()
	status, q := authorize(t, s, authQuery(verifier))
	require.Equal(t, http.StatusFound, status)
	assert.Equal(t, "st", q.Get("state"))
	code := q.Get("code")
	require.NotEmpty(t, code)

	exchange := url.Values{"grant_type": {"authorization_code"}, "client_id": {authClient}, "code": {code}, "redirect_uri": {authRedirect}, "code_verifier": {verifier}}
	status, tok := tokenPost(t, s, exchange)
	require.Equal(t, http.StatusOK, status, "%v", tok)
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	require.NotEmpty(t, access)
	require.NotEmpty(t, refresh)
	info, err := s.Validate(t.Context(), access)
	require.NoError(t, err)
	assert.Equal(t, []string{"openid", "offline"}, info.Scopes)

	status, again := tokenPost(t, s, exchange)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_grant", again["error"], "a code is used once")

	useRefresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {authClient}, "refresh_token": {refresh}}
	status, rotated := tokenPost(t, s, useRefresh)
	require.Equal(t, http.StatusOK, status)
	assert.NotEqual(t, refresh, rotated["refresh_token"])
	status, reused := tokenPost(t, s, useRefresh)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_grant", reused["error"], "a refresh token is used once")

	s.RevokeRefreshTokens()
	status, revoked := tokenPost(t, s, url.Values{"grant_type": {"refresh_token"}, "client_id": {authClient}, "refresh_token": {rotated["refresh_token"].(string)}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_grant", revoked["error"])
	assert.Equal(t, int64(1), s.CodeGrants())
	assert.Equal(t, int64(1), s.RefreshGrants())
	assert.Equal(t, int64(1), s.Authorizations())
}

func TestAuthorizationCodeChecks(t *testing.T) {
	s := newAuthServer(t)
	verifier := oauth2.GenerateVerifier()
	for _, tc := range []struct {
		name   string
		mutate func(url.Values)
	}{
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", oauth2.GenerateVerifier()) }},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }},
		{"other redirect", func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:2/callback") }},
		{"unknown code", func(f url.Values) { f.Set("code", "nope") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, q := authorize(t, s, authQuery(verifier))
			form := url.Values{"grant_type": {"authorization_code"}, "client_id": {authClient}, "code": {q.Get("code")}, "redirect_uri": {authRedirect}, "code_verifier": {verifier}}
			tc.mutate(form)
			status, out := tokenPost(t, s, form)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", out["error"])
		})
	}
	status, out := tokenPost(t, s, url.Values{"grant_type": {"authorization_code"}, "client_id": {"other"}})
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "invalid_client", out["error"])
}

func TestAuthorizeErrors(t *testing.T) {
	s := newAuthServer(t)
	q := authQuery(oauth2.GenerateVerifier())
	q.Set("client_id", "unknown")
	status, _ := authorize(t, s, q)
	assert.Equal(t, http.StatusBadRequest, status, "an unknown client gets a page, not a redirect")

	q = authQuery(oauth2.GenerateVerifier())
	q.Set("redirect_uri", "http://127.0.0.1:2/elsewhere")
	status, _ = authorize(t, s, q)
	assert.Equal(t, http.StatusBadRequest, status, "an unregistered redirect URI gets a page")

	q = authQuery("")
	q.Del("code_challenge")
	_, back := authorize(t, s, q)
	assert.Equal(t, "invalid_request", back.Get("error"), "PKCE is required")

	q = authQuery(oauth2.GenerateVerifier())
	q.Set("code_challenge_method", "plain")
	_, back = authorize(t, s, q)
	assert.Equal(t, "invalid_request", back.Get("error"), "only S256")

	s.SetConsent(testserver.ConsentDeny)
	_, back = authorize(t, s, authQuery(oauth2.GenerateVerifier()))
	assert.Equal(t, "access_denied", back.Get("error"))
	assert.Equal(t, "st", back.Get("state"))
	assert.Equal(t, "S256", s.LastAuthorization().Get("code_challenge_method"))
}

// A refresh token used twice revokes its whole login: every refresh token
// and access token rotated from the same code, and no other login.
func TestRefreshTokenReuseRevokesTheLogin(t *testing.T) {
	s := newAuthServer(t)
	login := func() map[string]any {
		verifier := "verifier-0123456789-0123456789-0123456789-0123"
		status, q := authorize(t, s, authQuery(verifier))
		require.Equal(t, http.StatusFound, status)
		status, tok := tokenPost(t, s, url.Values{"grant_type": {"authorization_code"}, "client_id": {authClient}, "code": {q.Get("code")}, "redirect_uri": {authRedirect}, "code_verifier": {verifier}})
		require.Equal(t, http.StatusOK, status)
		return tok
	}
	refresh := func(rt any) (int, map[string]any) {
		return tokenPost(t, s, url.Values{"grant_type": {"refresh_token"}, "client_id": {authClient}, "refresh_token": {rt.(string)}})
	}
	first, other := login(), login()
	status, second := refresh(first["refresh_token"])
	require.Equal(t, http.StatusOK, status)

	status, body := refresh(first["refresh_token"]) // used before
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_grant", body["error"])
	assert.EqualValues(t, 1, s.RefreshReuses())
	status, _ = refresh(second["refresh_token"])
	assert.Equal(t, http.StatusBadRequest, status, "the rotated refresh token is revoked too")
	for _, tok := range []map[string]any{first, second} {
		_, err := s.Validate(t.Context(), tok["access_token"].(string))
		assert.ErrorIs(t, err, testserver.ErrTokenInvalid, "the login's access tokens are revoked")
	}
	_, err := s.Validate(t.Context(), other["access_token"].(string))
	require.NoError(t, err, "another login is untouched")
	status, _ = refresh(other["refresh_token"])
	assert.Equal(t, http.StatusOK, status)
}
