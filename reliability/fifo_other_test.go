//go:build !unix

package reliability_test

import "errors"

// mkfifo fails where there are no named pipes in the file system: the
// fault matrix's FIFO row fails there rather than pass unchecked.
func mkfifo(string) error { return errors.New("no named pipes on this platform") }
