package testserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testClientID = "client id"
	// testSecret has every character that form-url-encoding changes.
	testSecret = "p+a/s:s%w&o=r d"
)

func newTokenServer(t *testing.T, opts ...testserver.TokenOption) *testserver.TokenServer {
	t.Helper()
	opts = append([]testserver.TokenOption{testserver.WithClient(testClientID, testSecret)}, opts...)
	ts, err := testserver.NewTokenServer(opts...)
	require.NoError(t, err)
	t.Cleanup(ts.Close)
	return ts
}

func ccConfig(ts *testserver.TokenServer, style oauth2.AuthStyle) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     testClientID,
		ClientSecret: testSecret,
		TokenURL:     ts.TokenURL(),
		Scopes:       []string{"all", "read"},
		AuthStyle:    style,
	}
}

func fetchToken(ctx context.Context, ts *testserver.TokenServer, cfg *clientcredentials.Config) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, ts.HTTPClient())
	return cfg.Token(ctx)
}

// postForm sends a raw token request; basic, when non-nil, is set unencoded
// with SetBasicAuth.
func postForm(t *testing.T, ts *testserver.TokenServer, form url.Values, basic []string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.TokenURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(basic[0], basic[1])
	}
	return do(t, ts, req)
}

func do(t *testing.T, ts *testserver.TokenServer, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := ts.HTTPClient().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &m)
	}
	return resp, m
}

func TestClientCredentialsEncodedSecret(t *testing.T) {
	clock := testserver.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	ts := newTokenServer(t, testserver.WithTokenClock(clock.Now))

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := ccConfig(ts, style)
		cfg.EndpointParams = url.Values{"audience": {"https://admin"}}
		tok, err := fetchToken(t.Context(), ts, cfg)
		require.NoError(t, err, "auth style %v", style)
		assert.Equal(t, "Bearer", tok.TokenType)
		assert.Len(t, tok.AccessToken, 43, "32 bytes, base64url without padding")
		assert.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, time.Minute)

		info, err := ts.Validate(t.Context(), tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, testserver.TokenInfo{
			ClientID:  testClientID,
			Scopes:    []string{"all", "read"},
			Audience:  "https://admin",
			ExpiresAt: clock.Now().Add(time.Hour),
		}, info)

		last := ts.LastRequest()
		assert.Equal(t, http.MethodPost, last.Method)
		assert.Equal(t, "client_credentials", last.Form.Get("grant_type"))
		assert.Equal(t, "all read", last.Form.Get("scope"))
		assert.Equal(t, "https://admin", last.Form.Get("audience"))
		if style == oauth2.AuthStyleInHeader {
			assert.True(t, strings.HasPrefix(last.BasicAuthHeader, "Basic "))
			assert.Empty(t, last.Form.Get("client_secret"))
		} else {
			assert.Empty(t, last.BasicAuthHeader)
			assert.Equal(t, testSecret, last.Form.Get("client_secret"))
		}
	}
	assert.Equal(t, int64(2), ts.Issued())
	assert.Equal(t, int64(2), ts.Requests())
}

func TestTokenResponseFormat(t *testing.T) {
	ts := newTokenServer(t)
	resp, body := postForm(t, ts, url.Values{"grant_type": {"client_credentials"}, "scope": {"a b"}},
		[]string{url.QueryEscape(testClientID), url.QueryEscape(testSecret)})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, "a b", body["scope"])
	assert.EqualValues(t, 3600, body["expires_in"])
	assert.NotEmpty(t, body["access_token"])
}

func TestTokenRequestErrors(t *testing.T) {
	ts := newTokenServer(t, testserver.WithAllowedAudiences("good"))
	enc := []string{url.QueryEscape(testClientID), url.QueryEscape(testSecret)}
	cc := url.Values{"grant_type": {"client_credentials"}}

	tests := []struct {
		name       string
		form       url.Values
		basic      []string
		wantStatus int
		wantCode   string
	}{
		{"raw secret in basic", cc, []string{testClientID, testSecret}, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret", cc, []string{url.QueryEscape(testClientID), "wrong"}, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", cc, []string{"nobody", url.QueryEscape(testSecret)}, http.StatusUnauthorized, "invalid_client"},
		{"no client authentication", cc, nil, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret in body", url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {"x"}}, nil, http.StatusUnauthorized, "invalid_client"},
		{"two authentication methods", url.Values{"grant_type": {"client_credentials"}, "client_secret": {testSecret}}, enc, http.StatusBadRequest, "invalid_request"},
		{"password grant", url.Values{"grant_type": {"password"}}, enc, http.StatusBadRequest, "unsupported_grant_type"},
		{"no grant type", url.Values{}, enc, http.StatusBadRequest, "invalid_request"},
		{"audience not allowed", url.Values{"grant_type": {"client_credentials"}, "audience": {"evil"}}, enc, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := postForm(t, ts, tt.form, tt.basic)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Equal(t, tt.wantCode, body["error"])
			assert.NotEmpty(t, body["error_description"])
			if tt.wantStatus == http.StatusUnauthorized {
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
			}
			assert.NotContains(t, body["error_description"], testSecret)
		})
	}
	assert.Zero(t, ts.Issued())

	t.Run("GET", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.TokenURL(), nil)
		require.NoError(t, err)
		resp, body := do(t, ts, req)
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "invalid_request", body["error"])
	})
	t.Run("JSON body", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.TokenURL(), strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, body := do(t, ts, req)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "invalid_request", body["error"])
	})
	t.Run("x/oauth2 surfaces the OAuth error", func(t *testing.T) {
		cfg := ccConfig(ts, oauth2.AuthStyleInHeader)
		cfg.ClientSecret = "wrong"
		_, err := fetchToken(t.Context(), ts, cfg)
		var re *oauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "invalid_client", re.ErrorCode)
		assert.Equal(t, http.StatusUnauthorized, re.Response.StatusCode)
	})
}

func TestLifetime(t *testing.T) {
	clock := testserver.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newTokenServer(t, testserver.WithLifetime(0), testserver.WithTokenClock(clock.Now))
	enc := []string{url.QueryEscape(testClientID), url.QueryEscape(testSecret)}
	form := url.Values{"grant_type": {"client_credentials"}}

	resp, body := postForm(t, ts, form, enc)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, body, "expires_in")
	assert.NotContains(t, body, "scope", "no scope requested")
	forever := body["access_token"].(string)

	ts.SetLifetime(time.Minute)
	resp, body = postForm(t, ts, form, enc)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 60, body["expires_in"])
	short := body["access_token"].(string)

	info, err := ts.Validate(t.Context(), short)
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(time.Minute), info.ExpiresAt)

	clock.Advance(time.Minute - time.Nanosecond)
	_, err = ts.Validate(t.Context(), short)
	require.NoError(t, err)

	clock.Advance(time.Nanosecond)
	_, err = ts.Validate(t.Context(), short)
	require.ErrorIs(t, err, testserver.ErrTokenInvalid)
	assert.Contains(t, err.Error(), "expired")
	assert.NotContains(t, err.Error(), short)

	clock.Advance(1000 * time.Hour)
	info, err = ts.Validate(t.Context(), forever)
	require.NoError(t, err)
	assert.True(t, info.ExpiresAt.IsZero())
}

func TestRevoke(t *testing.T) {
	ts := newTokenServer(t)
	cfg := ccConfig(ts, oauth2.AuthStyleInHeader)
	issue := func() string {
		tok, err := fetchToken(t.Context(), ts, cfg)
		require.NoError(t, err)
		return tok.AccessToken
	}
	a, b, c := issue(), issue(), issue()

	ts.Revoke(a)
	_, err := ts.Validate(t.Context(), a)
	require.ErrorIs(t, err, testserver.ErrTokenInvalid)
	assert.Contains(t, err.Error(), "revoked")
	_, err = ts.Validate(t.Context(), b)
	require.NoError(t, err)

	ts.RevokeAll()
	for _, tok := range []string{b, c} {
		_, err = ts.Validate(t.Context(), tok)
		require.ErrorIs(t, err, testserver.ErrTokenInvalid)
		assert.Contains(t, err.Error(), "revoked")
	}
	_, err = ts.Validate(t.Context(), issue())
	require.NoError(t, err, "tokens issued after RevokeAll are valid")

	_, err = ts.Validate(t.Context(), "never-issued")
	require.ErrorIs(t, err, testserver.ErrTokenInvalid)
	assert.Contains(t, err.Error(), "unknown")
}

func TestFaults(t *testing.T) {
	ts := newTokenServer(t)
	type result struct {
		status int
		body   string
		err    error
	}
	send := func(t *testing.T) result {
		t.Helper()
		form := url.Values{"grant_type": {"client_credentials"}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.TokenURL(), strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(testClientID), url.QueryEscape(testSecret))
		resp, err := ts.HTTPClient().Do(req)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return result{status: resp.StatusCode, body: string(b), err: err}
	}

	tests := []struct {
		name  string
		fault testserver.Fault
		check func(t *testing.T, r result)
	}{
		{"status", testserver.FaultStatus(http.StatusServiceUnavailable, "text/plain", "down"), func(t *testing.T, r result) {
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusServiceUnavailable, r.status)
			assert.Equal(t, "down", r.body)
		}},
		{"oauth error", testserver.FaultOAuthError(http.StatusBadRequest, "invalid_scope", "no such scope"), func(t *testing.T, r result) {
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusBadRequest, r.status)
			assert.JSONEq(t, `{"error":"invalid_scope","error_description":"no such scope"}`, r.body)
		}},
		{"garbage", testserver.FaultGarbage(), func(t *testing.T, r result) {
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusOK, r.status)
			assert.False(t, json.Valid([]byte(r.body)))
		}},
		{"body", testserver.FaultBody(http.StatusOK, `{"token_type":"Bearer","expires_in":-5}`), func(t *testing.T, r result) {
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusOK, r.status)
			assert.JSONEq(t, `{"token_type":"Bearer","expires_in":-5}`, r.body)
		}},
		{"close connection", testserver.FaultCloseConn(), func(t *testing.T, r result) {
			require.Error(t, r.err)
		}},
		{"reset mid-body", testserver.FaultResetMidBody(), func(t *testing.T, r result) {
			require.ErrorIs(t, r.err, io.ErrUnexpectedEOF)
			assert.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, `{"access_token":"trunc`, r.body)
		}},
		{"pass through", func(http.ResponseWriter, *http.Request) bool { return false }, func(t *testing.T, r result) {
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusOK, r.status)
			assert.Contains(t, r.body, "access_token")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.ResetCounters()
			ts.SetFault(tt.fault)
			defer ts.SetFault(nil)
			tt.check(t, send(t))
			assert.Equal(t, int64(1), ts.Requests())
			assert.Equal(t, http.MethodPost, ts.LastRequest().Method)
		})
	}

	t.Run("times", func(t *testing.T) {
		ts.ResetCounters()
		ts.SetFault(testserver.FaultTimes(2, testserver.FaultStatus(http.StatusInternalServerError, "", "")))
		defer ts.SetFault(nil)
		var statuses []int
		for range 4 {
			r := send(t)
			require.NoError(t, r.err)
			statuses = append(statuses, r.status)
		}
		assert.Equal(t, []int{500, 500, 200, 200}, statuses)
		assert.Equal(t, int64(4), ts.Requests())
		assert.Equal(t, int64(2), ts.Issued())
	})
	t.Run("once", func(t *testing.T) {
		ts.SetFault(testserver.FaultOnce(testserver.FaultGarbage()))
		defer ts.SetFault(nil)
		assert.False(t, json.Valid([]byte(send(t).body)))
		assert.True(t, json.Valid([]byte(send(t).body)))
	})
	t.Run("hang until the client gives up", func(t *testing.T) {
		ts.SetFault(testserver.FaultHang())
		defer ts.SetFault(nil)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := fetchToken(ctx, ts, ccConfig(ts, oauth2.AuthStyleInHeader))
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestLatencyCancelledByClient(t *testing.T) {
	ts := newTokenServer(t)
	ts.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := fetchToken(ctx, ts, ccConfig(ts, oauth2.AuthStyleInHeader))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Zero(t, ts.Issued())

	ts.SetLatency(time.Millisecond)
	_, err = fetchToken(t.Context(), ts, ccConfig(ts, oauth2.AuthStyleInHeader))
	require.NoError(t, err)
}

func TestCloseEndsHangingRequests(t *testing.T) {
	for _, name := range []string{"fault", "latency"} {
		t.Run(name, func(t *testing.T) {
			ts, err := testserver.NewTokenServer(testserver.WithClient(testClientID, testSecret))
			require.NoError(t, err)
			if name == "fault" {
				ts.SetFault(testserver.FaultHang())
			} else {
				ts.SetLatency(time.Hour)
			}
			done := make(chan error, 1)
			go func() {
				_, err := fetchToken(context.Background(), ts, ccConfig(ts, oauth2.AuthStyleInHeader))
				done <- err
			}()
			require.Eventually(t, func() bool { return ts.Requests() == 1 }, 5*time.Second, time.Millisecond)

			ts.Close()
			ts.Close() // idempotent
			select {
			case err := <-done:
				require.Error(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("request still hanging after Close")
			}
			goleak.VerifyNone(t)
		})
	}
}

func TestTokenServerTLS(t *testing.T) {
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	ts := newTokenServer(t, testserver.WithTokenTLS(ca))
	require.True(t, strings.HasPrefix(ts.TokenURL(), "https://127.0.0.1:"))

	// A client that trusts only the CA.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLSConfig()}}
	defer client.CloseIdleConnections()
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, client)
	tok, err := ccConfig(ts, oauth2.AuthStyleInHeader).Token(ctx)
	require.NoError(t, err)
	_, err = ts.Validate(t.Context(), tok.AccessToken)
	require.NoError(t, err)

	// A client that does not trust the CA fails.
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	_, err = ccConfig(ts, oauth2.AuthStyleInHeader).Token(context.WithValue(t.Context(), oauth2.HTTPClient, plain))
	require.Error(t, err)
}

func TestTokenOptionErrors(t *testing.T) {
	tests := map[string]testserver.TokenOption{
		"nil CA":        testserver.WithTokenTLS(nil),
		"empty id":      testserver.WithClient("", "x"),
		"negative life": testserver.WithLifetime(-time.Second),
		"nil clock":     testserver.WithTokenClock(nil),
		"duplicate id":  testserver.WithClient(testClientID, "other"),
	}
	for name, opt := range tests {
		t.Run(name, func(t *testing.T) {
			ts, err := testserver.NewTokenServer(testserver.WithClient(testClientID, testSecret), opt)
			require.Error(t, err)
			assert.Nil(t, ts)
		})
	}
}

func TestValidateHonoursContext(t *testing.T) {
	ts := newTokenServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ts.Validate(ctx, "x")
	require.True(t, errors.Is(err, context.Canceled))
}
