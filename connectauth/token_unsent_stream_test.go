package connectauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// A stream that was not sent (no token) keeps its request header apart
// from its response header and trailer, as a sent stream does: what the
// caller set on the request (here a session cookie) never reads as the
// server's answer, which code that logs a failed call's metadata prints.
func TestUnsentStreamKeepsRequestAndResponseHeadersApart(t *testing.T) {
	r := newFlyte2Rig(t, false)
	r.cfg.ClientSecret = "wrong-secret-never-printed-review"
	c := newClient(t, r.cfg)
	for _, p := range protocols {
		echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, append(c.Options, p.opts...)...)
		s := echo.Chat(ctx(t))
		s.RequestHeader().Set("Cookie", "session=review-secret-cookie")
		_, err := s.Receive()
		require.Error(t, err, p.name)
		assert.Empty(t, s.ResponseHeader().Values("Cookie"), "%s: the request's header is reported as the response's", p.name)
		_ = s.CloseRequest()
		_ = s.CloseResponse()
	}
	assert.Zero(t, r.srv.EchoCalls())
}
