// Package secretfile reads a small secret from a file without ever
// hanging: the file is opened without blocking (a named pipe with no
// writer would block an ordinary open), anything but a regular file is
// refused (a symbolic link is followed first), the read is bounded in
// size, and the caller's context bounds the time. The authenticator's
// SecretFromFile (Flyte's clientSecretLocation) reads through it.
package secretfile
