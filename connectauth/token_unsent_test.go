package connectauth_test

import (
	"errors"
	"io"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// A call whose flow the config chose is not sent when no token could be
// got, on every protocol and call shape: its caller reads the token
// endpoint's answer, and the server sees nothing.
func TestNoTokenNoCall(t *testing.T) {
	r := newFlyte2Rig(t, false)
	r.cfg.ClientSecret = "wrong-secret-never-printed-9d2"
	c := newClient(t, r.cfg)
	for _, p := range protocols {
		echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, append(c.Options, p.opts...)...)
		calls := map[string]func() error{
			"unary": func() error { _, err := echo.Echo(ctx(t), req(p.name)); return err },
			"server stream": func() error {
				s, err := echo.Repeat(ctx(t), req(p.name))
				if err != nil {
					return err
				}
				defer s.Close()
				for s.Receive() {
				}
				return s.Err()
			},
			"bidi": func() error {
				s := echo.Chat(ctx(t))
				if err := s.Send(&flyte2pb.EchoRequest{Value: "a"}); err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				_ = s.CloseRequest()
				_, err := s.Receive()
				_ = s.CloseResponse()
				return err
			},
		}
		for name, call := range calls {
			err := call()
			require.Error(t, err, "%s %s", p.name, name)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%s %s: %v", p.name, name, err)
			var te *authenticator.TokenError
			require.True(t, errors.As(err, &te), "%s %s: %v does not reach the *authenticator.TokenError", p.name, name, err)
			assert.Equal(t, "invalid_client", te.ErrorCode)
			var re *interceptor.RefreshError
			assert.False(t, errors.As(err, &re), "%s %s: no call went out to be rejected", p.name, name)
			assert.Contains(t, err.Error(), "not sent")
			assert.NotContains(t, err.Error(), r.cfg.ClientSecret)
		}
	}
	assert.Zero(t, r.srv.EchoCalls(), "no call went out without a token")
	assert.Zero(t, r.srv.Rejected())
}
