//go:build !unix

package main

import "testing"

// mkfifo skips the test: named pipes at a path are Unix's.
func mkfifo(t *testing.T, _ string) {
	t.Skip("no named pipes at a path on this system")
}
