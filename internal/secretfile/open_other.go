//go:build !unix

package secretfile

// openFlags is empty where the system has no non-blocking open; the
// context still bounds how long Read waits.
const openFlags = 0
