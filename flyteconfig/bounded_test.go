package flyteconfig_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
	"github.com/flyteauth/grpcauth/internal/secretfile"
)

// loadSoon runs Load and fails the test if it has not returned within a
// few seconds: a config file that is a pipe or a device must be refused,
// never waited on. It returns how long Load took.
func loadSoon(t *testing.T, o flyteconfig.Options) (*flyteconfig.Loaded, time.Duration, error) {
	t.Helper()
	type result struct {
		l   *flyteconfig.Loaded
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		l, err := flyteconfig.Load(o)
		done <- result{l, err}
	}()
	select {
	case r := <-done:
		return r.l, time.Since(start), r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("Load of %+v still running after 5s", o)
		return nil, 0, nil
	}
}

// requireRefused loads with o and checks that Load refuses the config file
// at path at once (well within Load's own 10 s bound), with the
// *flyteconfig.Error "path: msg" wrapping want.
func requireRefused(t *testing.T, o flyteconfig.Options, path, msg string, want error) {
	t.Helper()
	l, took, err := loadSoon(t, o)
	require.Error(t, err)
	assert.Less(t, took, 2*time.Second, "Load waited before refusing %s", path)
	assert.Nil(t, l)
	var ce *flyteconfig.Error
	require.ErrorAs(t, err, &ce, "%T %v", err, err)
	assert.Equal(t, path, ce.Source)
	assert.Empty(t, ce.Key)
	assert.Zero(t, ce.Line)
	assert.Equal(t, path+": "+msg, err.Error())
	assert.ErrorIs(t, err, want)
}

func TestLoadRefusesADevice(t *testing.T) {
	const dev = "/dev/zero"
	if _, err := os.Stat(dev); err != nil {
		t.Skipf("no %s here: %v", dev, err)
	}
	requireRefused(t, isolated(t, flyteconfig.Options{File: dev}), dev, "cannot read the config file", secretfile.ErrNotRegular)

	requireRefused(t, isolated(t, flyteconfig.Options{LookupEnv: env{"FLYTECTL_CONFIG": dev}.lookup}), dev, "cannot read the config file named by FLYTECTL_CONFIG", secretfile.ErrNotRegular)
}

func TestLoadRefusesADirectory(t *testing.T) {
	dir := t.TempDir()
	requireRefused(t, isolated(t, flyteconfig.Options{File: dir}), dir, "cannot read the config file", secretfile.ErrNotRegular)

	// A directory where the default file would be is not "missing".
	home := t.TempDir()
	def := filepath.Join(home, ".flyte", "config.yaml")
	require.NoError(t, os.MkdirAll(def, 0o755))
	requireRefused(t, flyteconfig.Options{HomeDir: home, LookupEnv: emptyEnv}, def, "cannot read the config file", secretfile.ErrNotRegular)
}

// configOfSize is a valid config file of exactly n bytes: an endpoint and
// a comment padding it out.
func configOfSize(t *testing.T, n int) []byte {
	t.Helper()
	const head = "admin:\n  endpoint: big.example:443\n#"
	require.Greater(t, n, len(head)+1)
	return []byte(head + strings.Repeat("x", n-len(head)-1) + "\n")
}

func TestLoadBoundsTheFileSize(t *testing.T) {
	const limit = 1 << 20 // 1 MiB
	dir := t.TempDir()

	atLimit := filepath.Join(dir, "at-limit.yaml")
	require.NoError(t, os.WriteFile(atLimit, configOfSize(t, limit), 0o600))
	l, _, err := loadSoon(t, isolated(t, flyteconfig.Options{File: atLimit}))
	require.NoError(t, err, "a file of exactly 1 MiB is read")
	assert.Equal(t, "big.example:443", l.Config.Endpoint)
	assert.Equal(t, atLimit, l.File)

	over := filepath.Join(dir, "over.yaml")
	require.NoError(t, os.WriteFile(over, configOfSize(t, limit+1), 0o600))
	requireRefused(t, isolated(t, flyteconfig.Options{File: over}), over, "cannot read the config file", secretfile.ErrTooLarge)

	// The default file is bounded too.
	home := t.TempDir()
	def := filepath.Join(home, ".flyte", "config.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(def), 0o755))
	require.NoError(t, os.WriteFile(def, configOfSize(t, 4*limit), 0o600))
	requireRefused(t, flyteconfig.Options{HomeDir: home, LookupEnv: emptyEnv}, def, "cannot read the config file", secretfile.ErrTooLarge)
}
