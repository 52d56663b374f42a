package connectauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// A stream whose token cannot be got is the connectretry failedConn, whose
// RequestHeader, ResponseHeader and ResponseTrailer are one and the same
// map. What the caller sets on the request (here a session cookie) comes
// back as the "server's" response header and trailer, where code that logs
// a failed call's response metadata prints it; and a sender goroutine
// setting request headers while a receiver goroutine reads the response
// header (as connect-go allows on a real stream, whose maps are separate)
// races on one map.
func TestReviewUnsentStreamKeepsRequestAndResponseHeadersApart(t *testing.T) {
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
