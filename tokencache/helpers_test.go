package tokencache_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/gofrs/flock"
	"github.com/stretchr/testify/require"
)

// jsonRecord is a well-formed cache file for key.
func jsonRecord(key, access string) (string, error) {
	data, err := json.Marshal(map[string]any{"version": 1, "key": key, "access_token": access})
	return string(data), err
}

// holdLock takes the lock of dir the way another process would and
// returns its release; the release also runs at the end of the test.
func holdLock(t *testing.T, dir string) func() {
	t.Helper()
	l := flock.New(filepath.Join(dir, ".lock"))
	require.NoError(t, l.Lock())
	release := func() { _ = l.Close() }
	t.Cleanup(release)
	return release
}
