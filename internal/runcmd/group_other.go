//go:build !unix

package runcmd

import "os/exec"

// ownProcessGroup does nothing where there are no Unix process groups: a
// cancelled context kills the command itself (exec's default), not the
// children it started.
func ownProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the command if it still runs.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
