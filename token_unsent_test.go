package grpcauth_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// A call whose flow the config chose is not sent when no token could be
// got: its caller reads the token endpoint's answer, not FlyteAdmin's
// rejection of a call without a token, and the server sees nothing.
func TestNoTokenNoCall(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.admin.SetRequireAuth(true)
	cfg := f.config()
	cfg.ClientSecret = "wrong-secret-never-printed-3c1"
	c := dial(t, cfg)
	echo := testserver.NewEchoClient(c.Conn)

	calls := map[string]func() error{
		"unary": func() error { _, err := echo.Unary(callCtx(t), "x"); return err },
		"server stream": func() error {
			_, err := echo.ServerStream(callCtx(t), "x")
			return err
		},
		"bidi": func() error { _, err := echo.Bidi(callCtx(t), []string{"a", "b"}); return err },
	}
	for name, call := range calls {
		err := call()
		require.Error(t, err, name)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), name)
		var te *authenticator.TokenError
		require.True(t, errors.As(err, &te), "%s: %v does not reach the *authenticator.TokenError", name, err)
		assert.Equal(t, "invalid_client", te.ErrorCode, name)
		var re *interceptor.RefreshError
		assert.False(t, errors.As(err, &re), "%s: no call went out to be rejected", name)
		msg := status.Convert(err).Message()
		assert.Contains(t, msg, "invalid_client", name)
		assert.Contains(t, msg, "not sent", name)
		assert.NotContains(t, msg, cfg.ClientSecret, name)
	}
	assert.Zero(t, f.admin.EchoCalls(), "no call went out without a token")
	assert.Zero(t, f.admin.Rejected())
	assert.Equal(t, int64(1), f.tokens.Requests(), "three calls inside the refusal pause: one token request")
}

// The lazy default, which may send a first call without a token, is
// TestNewClientNoAuth.
