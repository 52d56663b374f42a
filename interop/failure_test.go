package interop

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// wrongSecret is a secret Hydra does not know, with the same special
// characters as specialSecret.
const wrongSecret = "wr0ng+/:%&=secret with space"

// requireTokenFailure checks an error of a call whose token request Hydra
// refused: code Unauthenticated, Hydra's OAuth error code in the message
// and in the typed error, and none of the secrets anywhere in its text.
// rejected says that the call carried a token the server rejected (its
// refresh failed: a *RefreshError); otherwise it had none and was not sent.
func requireTokenFailure(t *testing.T, err error, rejected bool, oauthCode string, secrets ...string) *authenticator.TokenError {
	t.Helper()
	require.Error(t, err)
	t.Logf("call error: %v", err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "status code of %v", err)
	assert.Contains(t, status.Convert(err).Message(), oauthCode)
	var re *interceptor.RefreshError
	assert.Equal(t, rejected, errors.As(err, &re), "errors.As(*interceptor.RefreshError) on %T", err)
	if !rejected {
		assert.Contains(t, status.Convert(err).Message(), "the call was not sent")
	}
	var te *authenticator.TokenError
	require.True(t, errors.As(err, &te), "errors.As(*authenticator.TokenError) on %T", err)
	assert.Equal(t, oauthCode, te.ErrorCode)
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), status.Convert(err).Message()} {
		for _, s := range secrets {
			require.NotContains(t, text, s, "an error carries a secret")
		}
	}
	return te
}

// TestWrongSecret is scenario 5, first half: with a secret Hydra does not
// know, every call fails with Unauthenticated and Hydra's invalid_client;
// the first makes one token request, and the calls within the pause after
// a refusal for good make none (no retry loop, no request per call); no
// call is sent without a token; the secret is in no error and no log line.
func TestWrongSecret(t *testing.T) {
	s := newStack(t, stackSpec{client: clientSpec{Secret: specialSecret}})
	c, logs := dial(t, loadConfig(t, s.writeConfig(t, fileSpec{secret: wrongSecret})))
	echo := testserver.NewEchoClient(c.Conn)

	const calls = 3
	for i := range calls {
		te := requireTokenFailure(t, unary(t.Context(), echo, "hi"), false, "invalid_client", wrongSecret, specialSecret)
		assert.Equal(t, http.StatusUnauthorized, te.StatusCode)
		assert.Equal(t, int64(1), c.Authenticator.Stats().TokenRequests, "token requests after call %d", i+1)
	}
	_, err := echo.ServerStream(t.Context(), "v")
	requireTokenFailure(t, err, false, "invalid_client", wrongSecret, specialSecret)

	stats := c.Authenticator.Stats()
	assert.Equal(t, int64(1), stats.TokenRequests, "one token request, then the refusal pause")
	assert.Equal(t, int64(1), stats.Failures)
	assert.Zero(t, s.admin.EchoCalls(), "no call went out without a token")
	assert.Equal(t, 0, s.tokens.Distinct(), "no token ever reached the admin server")
	assert.NotContains(t, logs.String(), wrongSecret)
	assert.NotContains(t, logs.String(), specialSecret)
	assert.NotContains(t, fmt.Sprint(c.Authenticator), wrongSecret)
	assert.NotContains(t, fmt.Sprintf("%+v %#v", c.Authenticator, c.Authenticator), wrongSecret)
}

// TestDeletedClient is scenario 5, second half: once the client is deleted
// in Hydra, its tokens stop working and a new token request fails with
// invalid_client; the call returns Unauthenticated after one refresh.
func TestDeletedClient(t *testing.T) {
	s := newStack(t, stackSpec{client: clientSpec{Secret: specialSecret}})
	c, logs := dial(t, loadConfig(t, s.writeConfig(t, fileSpec{})))
	echo := testserver.NewEchoClient(c.Conn)
	require.NoError(t, unary(t.Context(), echo, "before"))
	token, _ := s.tokens.Last()
	before := c.Authenticator.Stats()

	hy.DeleteClient(t, s.client.ID)
	// Hydra deletes a client's tokens with it.
	assert.False(t, hy.Introspect(t, token).Active, "token of a deleted client")

	rejectedBefore := s.admin.Rejected()
	err := unary(t.Context(), echo, "after")
	requireTokenFailure(t, err, true, "invalid_client", specialSecret)
	after := c.Authenticator.Stats()
	assert.Equal(t, before.TokenRequests+1, after.TokenRequests, "one token request, no loop")
	assert.Equal(t, rejectedBefore+1, s.admin.Rejected(), "the call was sent once, not again")

	// A client built afresh fails the same way on its first call.
	c2, logs2 := dial(t, loadConfig(t, s.writeConfig(t, fileSpec{})))
	requireTokenFailure(t, unary(t.Context(), testserver.NewEchoClient(c2.Conn), "fresh"), false, "invalid_client", specialSecret)
	assert.Equal(t, int64(1), c2.Authenticator.Stats().TokenRequests)

	for _, l := range []string{logs.String(), logs2.String()} {
		assert.NotContains(t, l, specialSecret)
		assert.NotContains(t, l, token)
	}
}
