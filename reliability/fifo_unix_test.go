//go:build unix

package reliability_test

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// mkfifo puts a named pipe at path, in place of what was there.
func mkfifo(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syscall.Mkfifo(path, 0o600)
}
