//go:build unix

package tokencache

import (
	"fmt"
	"os"
	"syscall"
)

// checkOwner refuses a file another user owns: its token is not ours to
// send, and a file planted by someone else must not choose our identity.
func checkOwner(file *os.File) error {
	fi, err := file.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("owned by uid %d, not %d", st.Uid, uid)
	}
	return nil
}

// checkDir refuses a directory that other users may write to: they could
// replace a token file with their own. One they may only read is accepted
// (the files in it are 0600, their names are hashes).
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("tokencache: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("tokencache: %s has mode %04o: other users may write to it; run `chmod 700 %s` or choose another directory", dir, perm, dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("tokencache: %s is owned by uid %d, not by this user", dir, st.Uid)
	}
	return nil
}

// openFlags makes opening a named pipe return at once instead of waiting
// for a writer.
const openFlags = syscall.O_NONBLOCK
