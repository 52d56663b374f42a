//go:build unix

package tokencache_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/tokencache"
)

// A named pipe at a cache file's path is ignored at once, never waited on
// (issue 23, item 12).
func TestLoadIgnoresAFIFO(t *testing.T) {
	dir := t.TempDir()
	c, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	require.NoError(t, syscall.Mkfifo(c.Path("key"), 0o600))
	done := make(chan error, 1)
	go func() {
		tok, err := c.Load(t.Context(), "key")
		if err == nil && tok != nil {
			err = os.ErrExist
		}
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "a FIFO is no token and no error")
	case <-time.After(5 * time.Second):
		t.Fatal("Load waited on a named pipe")
	}
}

// A lock-file symlink planted in the cache directory is refused: Delete
// neither follows it nor creates its target (issue 23, item 12).
func TestDeleteRefusesALockSymlink(t *testing.T) {
	dir := t.TempDir()
	c, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	target := filepath.Join(t.TempDir(), "created-by-the-cache")
	require.NoError(t, os.Symlink(target, filepath.Join(dir, ".lock")))
	err = c.Delete(t.Context(), "key")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a regular file")
	_, statErr := os.Stat(target)
	assert.ErrorIs(t, statErr, os.ErrNotExist, "the link's target was created")
}

// A cache directory other users may write to is refused by Load and
// Delete as by Save: a token file there could be theirs, and Delete would
// lock and remove in their directory (issue 23, item 12).
func TestLoadAndDeleteCheckTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	c, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	require.NoError(t, c.Save(t.Context(), "key", &oauth2.Token{AccessToken: "planted"}))
	tok, err := c.Load(t.Context(), "key")
	require.NoError(t, err)
	require.NotNil(t, tok, "a safe directory is read")

	require.NoError(t, os.Chmod(dir, 0o777))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	tok, err = c.Load(t.Context(), "key")
	require.NoError(t, err, "an unusable cache is no token, not an error")
	assert.Nil(t, tok, "a token in a directory others may write to is not used")
	err = c.Delete(t.Context(), "key")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "other users may write to it")
	_, err = os.Stat(c.Path("key"))
	assert.NoError(t, err, "Delete removed nothing")
}
