package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// What a hostile identity provider puts in its OAuth error reaches the
// terminal cleaned: no escape sequence (OSC 52 clipboard write, title,
// screen clear) and no bidirectional override (issue 23, item 11).
func TestTokenErrorPrintsNoEscapeSequence(t *testing.T) {
	s := newServers(t)
	s.tokens.SetFault(testserver.FaultOAuthError(400, "invalid_client\x1b]52;c;ZXZpbA==\x07", "\x1b[2J\x1b]0;pwned\x07Logged in\u202e"))
	code, out, errOut := runCmd(t, fakeEnv(map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret}), "token",
		"--endpoint", s.admin.Addr(), "--ca-cert", s.caFile, "--client-id", clientID)
	assert.Equal(t, exitFail, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "invalid_client", "the error is still told")
	for _, bad := range []string{"\x1b", "\x07", "\u202e"} {
		assert.NotContains(t, errOut, bad)
	}
}
