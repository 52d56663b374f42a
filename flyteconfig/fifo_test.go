//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package flyteconfig_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
	"github.com/flyteauth/grpcauth/internal/secretfile"
)

// mkfifo makes a named pipe at path that nobody writes to: opening it to
// read would wait for a writer, reading it would wait for data.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// A named pipe as the config file, however it is named, is an *Error at
// once, never a hang.
func TestLoadRefusesANamedPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.yaml")
	mkfifo(t, fifo)

	requireRefused(t, isolated(t, flyteconfig.Options{File: fifo}), fifo, "cannot read the config file", secretfile.ErrNotRegular)

	requireRefused(t, isolated(t, flyteconfig.Options{LookupEnv: env{"FLYTECTL_CONFIG": fifo}.lookup}), fifo, "cannot read the config file named by FLYTECTL_CONFIG", secretfile.ErrNotRegular)

	home := t.TempDir()
	def := filepath.Join(home, ".flyte", "config.yaml")
	mkfifo(t, def)
	requireRefused(t, flyteconfig.Options{HomeDir: home, LookupEnv: emptyEnv}, def, "cannot read the config file", secretfile.ErrNotRegular)

	// A symbolic link to the pipe is followed, and refused the same way.
	link := filepath.Join(t.TempDir(), "link.yaml")
	require.NoError(t, os.Symlink(fifo, link))
	requireRefused(t, isolated(t, flyteconfig.Options{File: link}), link, "cannot read the config file", secretfile.ErrNotRegular)
}
