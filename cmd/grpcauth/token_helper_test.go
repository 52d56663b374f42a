package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// asCLIEnv makes the test binary run as grpcauth itself (TestMain), so
// that a test can give it to a flow as a command.
const asCLIEnv = "GRPCAUTH_TEST_RUN_AS_CLI"

// --output json: one line, version 1, the token, its type, its expiry and
// the header key the deployment names; stable field names.
func TestTokenOutputJSON(t *testing.T) {
	s := newServers(t)
	args := []string{"token", "--endpoint", "dns:///" + s.admin.Addr(), "--ca-cert", s.caFile,
		"--client-id", clientID, "--client-secret-file", secretFile(t, secret+"\n")}
	before := time.Now()
	code, out, errOut := runCmd(t, fakeEnv(nil), append(args, "--output", "json")...)
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Equal(t, 1, strings.Count(out, "\n"), "one line: %q", out)

	var fields map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &fields))
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"version", "access_token", "token_type", "expiry", "header"}, keys)
	assert.EqualValues(t, 1, fields["version"])
	assert.Equal(t, "Bearer", fields["token_type"])
	assert.Equal(t, "flyte-authorization", fields["header"], "the key the deployment advertises")
	_, err := s.tokens.Validate(t.Context(), fields["access_token"].(string))
	require.NoError(t, err)
	expiry, err := time.Parse(time.RFC3339, fields["expiry"].(string))
	require.NoError(t, err)
	assert.True(t, expiry.After(before), "expiry %s", expiry)
	assert.NotContains(t, out+errOut, secret)

	code, out, errOut = runCmd(t, fakeEnv(nil), append(args, "--output", "header")...)
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.True(t, strings.HasPrefix(out, "flyte-authorization: Bearer "), "%q", out)

	code, _, errOut = runCmd(t, fakeEnv(nil), append(args, "--output", "yaml\x1b[31m")...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, `--output "yaml [31m": want token, header or json`)
}

// grpcauth token as the command of Flyte's authType: ExternalCommand, as
// flytekit, flyte-sdk and flytectl would run it (the README's recipe): our
// own ExternalCommand flow runs it and its calls are accepted, with one
// client-credentials token request for many runs (the helper's cache).
func TestTokenAsExternalCommand(t *testing.T) {
	tokens, admin, _ := newPlainServers(t, nil)
	dir := t.TempDir()
	helperConfig := filepath.Join(dir, "helper.yaml")
	require.NoError(t, os.WriteFile(helperConfig, fmt.Appendf(nil,
		"admin:\n  endpoint: dns:///%s\n  insecure: true\n  clientId: %s\n  clientSecretLocation: %s\n",
		admin.Addr(), clientID, secretFile(t, secret)), 0o600))
	t.Setenv(asCLIEnv, "1")
	cfg := grpcauth.Config{
		Endpoint: "dns:///" + admin.Addr(),
		Insecure: true,
		AuthType: grpcauth.AuthTypeExternalCommand,
		Command:  []string{os.Args[0], "token", "--config", helperConfig, "--token-cache-dir", filepath.Join(dir, "tokens")},
	}
	for i := range 3 { // three programs, each running the helper once
		c, err := grpcauth.New(cfg)
		require.NoError(t, err)
		got, err := testserver.NewEchoClient(c.Conn).Unary(t.Context(), "via helper")
		require.NoError(t, err, "program %d", i)
		assert.Equal(t, "via helper", got)
		require.NoError(t, c.Close())
	}
	assert.EqualValues(t, 1, tokens.Issued(), "the helper's cache served the later runs")
	assert.Zero(t, admin.Rejected())
}
