package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// grpcauth logout with authType Passthrough and no clientId must fail
// cleanly, not panic on the nil ConfigStore.
func TestLogoutPassthroughWithoutClientIDDoesNotPanic(t *testing.T) {
	code, out, errOut := runCmd(t, fakeEnv(map[string]string{"FLYTE_ADMIN_AUTHTYPE": "Passthrough"}), "logout", "--endpoint", "127.0.0.1:1", "--insecure")
	assert.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "authType Passthrough keeps no login to remove")
}
