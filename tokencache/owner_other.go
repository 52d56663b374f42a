//go:build !unix

package tokencache

import "os"

// checkOwner accepts every file: outside Unix the per-user directory's
// access control list is what keeps other users out.
func checkOwner(*os.File) error { return nil }

// checkDir accepts every directory, for the same reason.
func checkDir(string) error { return nil }

// openFlags is empty where the system has no non-blocking open.
const openFlags = 0
