package authenticator_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// errEnv is what an error case breaks, besides the token server, and
// then repairs.
type errEnv struct {
	store *fakeStore
}

// closedURL returns a token URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr + testserver.TokenPath
}

func TestTokenErrors(t *testing.T) {
	const htmlBody = "<html><body>Internal Server Error: upstream db-password-hunter2 unreachable</body></html>"
	hugeBody := `{"access_token":"` + strings.Repeat("a", 2<<20) + `","token_type":"Bearer"}`

	tests := []struct {
		name  string
		opts  []authenticator.Option
		fault testserver.Fault          // installed on the token server, if any
		spoil func(*testing.T, *errEnv) // breaks something else, if any
		check func(*testing.T, error)
		// transient: the request is sent again twice before it fails.
		transient bool
	}{
		{
			name:  "401 invalid_client",
			fault: testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret"),
			check: func(t *testing.T, err error) {
				te := requireTokenError(t, err)
				assert.Equal(t, http.StatusUnauthorized, te.StatusCode)
				assert.Equal(t, "invalid_client", te.ErrorCode)
				assert.Equal(t, "unknown client or wrong secret", te.ErrorDescription)
				assert.Contains(t, err.Error(), "HTTP 401: invalid_client (unknown client or wrong secret)")
			},
		},
		{
			name:  "400 invalid_scope",
			fault: testserver.FaultOAuthError(http.StatusBadRequest, "invalid_scope", "scope write is not allowed"),
			check: func(t *testing.T, err error) {
				te := requireTokenError(t, err)
				assert.Equal(t, http.StatusBadRequest, te.StatusCode)
				assert.Equal(t, "invalid_scope", te.ErrorCode)
				assert.Equal(t, "scope write is not allowed", te.ErrorDescription)
				assert.Contains(t, err.Error(), "invalid_scope (scope write is not allowed)")
			},
		},
		{
			name:      "500 HTML page",
			transient: true,
			fault:     testserver.FaultStatus(http.StatusInternalServerError, "text/html; charset=utf-8", htmlBody),
			check: func(t *testing.T, err error) {
				te := requireTokenError(t, err)
				assert.Equal(t, http.StatusInternalServerError, te.StatusCode)
				assert.Empty(t, te.ErrorCode)
				assert.Contains(t, te.Detail, "not an OAuth2 error")
				assert.Contains(t, te.Detail, "text/html")
				assert.NotContains(t, err.Error(), "hunter2", "no body text in the message")
				assert.NotContains(t, err.Error(), "<html>")
			},
		},
		{
			name:  "200 garbage",
			fault: testserver.FaultGarbage(),
			check: func(t *testing.T, err error) {
				requireTokenError(t, err)
				assert.NotContains(t, err.Error(), "this is not JSON", "no body text in the message")
			},
		},
		{
			name:  "200 without access_token",
			fault: testserver.FaultBody(http.StatusOK, `{"token_type":"Bearer","expires_in":3600}`),
			check: func(t *testing.T, err error) {
				requireTokenError(t, err)
				assert.Contains(t, err.Error(), "access_token")
			},
		},
		{
			name:  "body over 1 MiB",
			fault: testserver.FaultBody(http.StatusOK, hugeBody),
			check: func(t *testing.T, err error) {
				requireTokenError(t, err)
				assert.NotContains(t, err.Error(), "aaaaaaaa")
				assert.Less(t, len(err.Error()), 1000)
			},
		},
		{
			name:  "timeout",
			opts:  []authenticator.Option{authenticator.WithTokenTimeout(250 * time.Millisecond)},
			fault: testserver.FaultHang(),
			check: func(t *testing.T, err error) {
				te := requireTokenError(t, err)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Zero(t, te.StatusCode)
				assert.Contains(t, err.Error(), "timeout")
			},
		},
		{
			name:      "connection refused",
			transient: true,
			spoil: func(t *testing.T, e *errEnv) {
				e.store.SetTokenEndpoint(closedURL(t))
			},
			check: func(t *testing.T, err error) {
				te := requireTokenError(t, err)
				assert.Zero(t, te.StatusCode)
				require.Error(t, te.Err)
				assert.Contains(t, err.Error(), "refused")
			},
		},
		{
			name:      "connection closed before the answer",
			transient: true,
			fault:     testserver.FaultCloseConn(),
			check: func(t *testing.T, err error) {
				te := requireTokenError(t, err)
				assert.Zero(t, te.StatusCode)
				require.Error(t, te.Err)
			},
		},
		{
			name:  "connection closed mid-body",
			fault: testserver.FaultResetMidBody(),
			check: func(t *testing.T, err error) {
				requireTokenError(t, err)
				assert.Contains(t, err.Error(), "EOF")
				assert.NotContains(t, err.Error(), "trunc", "no body text in the message")
			},
		},
		{
			name: "config store error",
			spoil: func(_ *testing.T, e *errEnv) {
				e.store.SetError(errors.New("store is down"))
			},
			check: func(t *testing.T, err error) {
				assert.Contains(t, err.Error(), "resolving client config")
				assert.Contains(t, err.Error(), "store is down")
			},
		},
		{
			name: "no token endpoint",
			spoil: func(_ *testing.T, e *errEnv) {
				e.store.SetTokenEndpoint("")
			},
			check: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, authenticator.ErrNoTokenEndpoint)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newDefaultTokenServer(t)
			e := &errEnv{store: newFakeStore(configstore.ClientConfig{TokenEndpoint: ts.TokenURL()})}
			a := newAuth(t, e.store, tt.opts...)
			if tt.fault != nil {
				ts.SetFault(tt.fault)
			}
			if tt.spoil != nil {
				tt.spoil(t, e)
			}

			err := a.RefreshCredentials(context.Background())
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "authenticator: "), "the message says where it comes from: %q", err)
			t.Logf("error: %v", err)
			requireNoSecret(t, err.Error())
			tt.check(t, err)
			_, _, ok := credOK(a.Credential(context.Background()))
			assert.False(t, ok, "a failed refresh installs nothing")
			requests := int64(1)
			if tt.transient {
				requests = 3
			}
			assert.EqualValues(t, authenticator.Stats{TokenRequests: requests, Failures: 1, Explicit: 1}, a.Stats())

			// Repair everything: the next refresh works.
			ts.SetFault(nil)
			e.store.SetError(nil)
			e.store.SetTokenEndpoint(ts.TokenURL())
			require.NoError(t, a.RefreshCredentials(context.Background()))
			_, err = ts.Validate(context.Background(), accessToken(t, fetchNow(t, a)))
			require.NoError(t, err)
		})
	}
}

// requireTokenError fails unless err wraps a *TokenError, which it returns.
func requireTokenError(t *testing.T, err error) *authenticator.TokenError {
	t.Helper()
	var te *authenticator.TokenError
	require.ErrorAs(t, err, &te)
	assert.NotEmpty(t, te.TokenURL)
	requireNoSecret(t, te.Error())
	return te
}

func TestWrongSecretIsInvalidClient(t *testing.T) {
	ts := newTokenServer(t, testserver.WithClient(testClientID, "the-right-one"))
	a := newAuth(t, staticFor(ts))

	err := a.RefreshCredentials(context.Background())
	te := requireTokenError(t, err)
	assert.Equal(t, http.StatusUnauthorized, te.StatusCode)
	assert.Equal(t, "invalid_client", te.ErrorCode)
	requireNoSecret(t, err.Error())
	assert.NotContains(t, err.Error(), "the-right-one")
}

func TestRemoteStoreErrorKeepsGRPCCode(t *testing.T) {
	ts := newDefaultTokenServer(t)
	admin := newAdmin(t, ts)
	admin.SetMetadataError(status.Error(codes.Unavailable, "admin is restarting"))
	a := newAuth(t, newRemote(t, admin))

	err := a.RefreshCredentials(context.Background())
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err), "the store's gRPC code survives: %v", err)
	assert.Contains(t, err.Error(), "resolving client config")
	assert.Regexp(t, `GetOAuth2Metadata|GetPublicClientConfig`, err.Error(), "the message names the RPC")
	requireNoSecret(t, err.Error())
	assert.Zero(t, ts.Requests(), "no token request without a config")

	// The failure is not cached.
	admin.SetMetadataError(nil)
	require.NoError(t, a.RefreshCredentials(context.Background()))
	assert.EqualValues(t, 1, ts.Issued())
}
