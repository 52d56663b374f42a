package interop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// commandTimeout bounds one run of the grpcauth command, and its build.
const commandTimeout = 2 * time.Minute

// buildCommand builds cmd/grpcauth from the library's module (the
// directory above this one) into a temporary directory.
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "grpcauth")
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/grpcauth")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/grpcauth: %s", out)
	return bin
}

// runCommand runs the grpcauth binary with args and an environment of
// only env (plus a HOME without a Flyte config), and returns its exit
// status, stdout and stderr.
func runCommand(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case assert.ErrorAs(t, err, &exitErr):
		code = exitErr.ExitCode()
	default:
		code = -1
	}
	return code, out.String(), errOut.String()
}

// TestTokenCommand is scenario 6: `grpcauth token` with a Flyte config file
// and the secret in FLYTE_CREDENTIALS_CLIENT_SECRET asks the admin server
// where Hydra is and prints a token that Hydra calls active.
func TestTokenCommand(t *testing.T) {
	s := newStack(t, stackSpec{client: clientSpec{
		Secret:    specialSecret,
		Scopes:    []string{"flyte.read", "flyte.write"},
		Audiences: []string{"https://flyte.example/admin"},
	}})
	// The file names a secret file with a wrong secret: the environment
	// variable must win, as in flytekit.
	config := s.writeConfig(t, fileSpec{secret: wrongSecret, scopes: []string{"flyte.read"}})
	bin := buildCommand(t)
	env := []string{"FLYTE_CREDENTIALS_CLIENT_SECRET=" + specialSecret}

	t.Run("bare token", func(t *testing.T) {
		code, stdout, stderr := runCommand(t, bin, env, "token", "--config", config)
		require.Equal(t, 0, code, "stderr: %s", stderr)
		token := strings.TrimSuffix(stdout, "\n")
		require.NotEmpty(t, token)
		require.NotContains(t, token, "\n", "one line")
		in := hy.Introspect(t, token)
		assert.True(t, in.Active)
		assert.Equal(t, s.client.ID, in.ClientID)
		assert.Equal(t, []string{"flyte.read"}, in.Scopes())
		assert.NotContains(t, stdout+stderr, specialSecret)
	})

	t.Run("header with flags", func(t *testing.T) {
		code, stdout, stderr := runCommand(t, bin, env, "token", "--config", config, "--header",
			"--scopes", "flyte.read,flyte.write", "--audience", "https://flyte.example/admin")
		require.Equal(t, 0, code, "stderr: %s", stderr)
		key, value, ok := strings.Cut(strings.TrimSuffix(stdout, "\n"), ": ")
		require.True(t, ok, "want key: value, got %q", stdout)
		assert.Equal(t, "authorization", key)
		token, ok := strings.CutPrefix(value, "Bearer ")
		require.True(t, ok, "want a Bearer value")
		in := hy.Introspect(t, token)
		assert.True(t, in.Active)
		assert.Equal(t, []string{"flyte.read", "flyte.write"}, in.Scopes())
		assert.Equal(t, []string{"https://flyte.example/admin"}, []string(in.Audience))
	})

	t.Run("wrong secret", func(t *testing.T) {
		code, stdout, stderr := runCommand(t, bin, []string{"FLYTE_CREDENTIALS_CLIENT_SECRET=" + wrongSecret},
			"token", "--config", config)
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout, "no token on failure")
		assert.Contains(t, stderr, "invalid_client")
		assert.NotContains(t, stderr, wrongSecret)
		assert.NotContains(t, stderr, specialSecret)
		t.Logf("stderr: %s", stderr)
	})
}
