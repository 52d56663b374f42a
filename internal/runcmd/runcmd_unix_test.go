//go:build unix

package runcmd_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/runcmd"
)

// alive reports whether pid is a running process: not gone, not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist) && !strings.Contains(err.Error(), "no such process")
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// A command that fails (exits non-zero) and leaves a child holding its
// standard output open: exec closes the pipes after the wait delay and
// reports the exit status, not ErrWaitDelay, and the child is stopped all
// the same, or each failed token request of such a command would leave one
// more process behind.
func TestFailedCommandLeavesNoChildHoldingItsOutput(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "token.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nsleep 1000 & echo $! > '"+pidFile+"'; echo 'login required' >&2; exit 3\n"), 0o700))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := runcmd.Run(ctx, []string{script}, os.Environ(), 1<<10, 1<<10)
	var re *runcmd.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, 3, re.ExitCode, "%v", err)
	assert.Contains(t, out.Stderr, "login required")

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	require.Eventually(t, func() bool { return !alive(pid) }, 10*time.Second, 10*time.Millisecond,
		"child %d of the failed command still runs", pid)
}
