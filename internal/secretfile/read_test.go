package secretfile_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/secretfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	require.NoError(t, os.WriteFile(small, []byte("hello"), 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("x", 11)), 0o600))

	b, err := secretfile.Read(t.Context(), small, 10)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))

	_, err = secretfile.Read(t.Context(), big, 10)
	require.ErrorIs(t, err, secretfile.ErrTooLarge)
	assert.Contains(t, err.Error(), big)
	assert.NotContains(t, err.Error(), "xxx")

	_, err = secretfile.Read(t.Context(), dir, 10)
	require.ErrorIs(t, err, secretfile.ErrNotRegular)
	assert.Contains(t, err.Error(), "a directory")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = secretfile.Read(ctx, small, 10)
	require.ErrorIs(t, err, context.Canceled)
}
