package tokencache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flyteauth/grpcauth/internal/detach"
	"github.com/zalando/go-keyring"
)

const (
	// keyringService is the service of grpcauth's items in the OS keyring;
	// each item's user is the hash of its cache key, as a file's name is.
	keyringService = "grpcauth"
	// maxKeyringItem bounds an item: Windows's Credential Manager keeps at
	// most 2,560 bytes per credential. An entry over it keeps only its
	// refresh token in the keyring, else goes to a file.
	maxKeyringItem = 2560
)

// keyringWait bounds one keyring operation: a keyring that waits for a
// person to unlock it must not hold a call. (A variable for tests.)
var keyringWait = 3 * time.Second

// secretStore is the OS keyring as a File uses it (go-keyring's
// functions); tests give their own.
type secretStore interface {
	get(service, user string) (string, error)
	set(service, user, secret string) error
	del(service, user string) error
}

// osKeyring is the OS keyring: the Secret Service over D-Bus on Linux, the
// Keychain on macOS, the Credential Manager on Windows.
type osKeyring struct{}

func (osKeyring) get(service, user string) (string, error) { return keyring.Get(service, user) }
func (osKeyring) set(service, user, secret string) error   { return keyring.Set(service, user, secret) }
func (osKeyring) del(service, user string) error           { return keyring.Delete(service, user) }

// WithKeyring keeps the tokens in the OS keyring (the Secret Service on
// Linux, the Keychain on macOS, the Credential Manager on Windows), one
// item per cache key under the service "grpcauth", instead of in files.
// The directory keeps the lock that every change holds, so processes share
// the keyring's entries as they share files. The keyring never fails a
// call: when it cannot be used (no Secret Service is running, it is locked
// and would ask a person, or it does not answer within 3 s), the File
// warns once and keeps its tokens in files from then on; an entry too
// large for an item (over 2,560 bytes, Windows's limit) keeps only its
// refresh token there, or goes to a file when it has none.
func WithKeyring() Option {
	return func(f *File) error {
		f.ring = &ring{store: osKeyring{}}
		return nil
	}
}

// ring is a File's use of the keyring: once an operation failed, it is
// off for the File's life, and remembers why.
type ring struct {
	store secretStore
	mu    sync.Mutex
	why   error // why the keyring is off; nil while it is used
}

// ErrKeyringUnavailable is wrapped by the error of File.Delete when the
// File keeps its tokens in the OS keyring (WithKeyring) and the keyring
// could not be asked: the file is removed, but a login kept in the keyring
// (by a session where it worked) may remain.
var ErrKeyringUnavailable = errors.New("the OS keyring could not be asked")

// account is the item's user for key.
func account(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// ringDo runs op on r's keyring, detached (internal/detach) and bounded
// by keyringWait and ctx, so an operation left running after a timeout
// touches nothing of the caller's. A failure other
// than no item turns the keyring off, with a warning; so does a timeout,
// whose operation is left to end on its own (a D-Bus call is bounded by
// the bus's own reply timeout). The error of an operation on a keyring
// that is off wraps ErrKeyringUnavailable and says why it is off.
func ringDo[T any](ctx context.Context, r *ring, f *File, what string, op func() (T, error)) (T, error) {
	var zero T
	if err := r.off(); err != nil {
		return zero, err
	}
	wait, cancel := context.WithTimeoutCause(ctx, keyringWait, fmt.Errorf("no answer within %s", keyringWait))
	defer cancel()
	v, err := detach.Call(wait, op)
	if ctx.Err() != nil {
		return zero, ctx.Err()
	}
	if err == nil || errors.Is(err, keyring.ErrNotFound) {
		return v, err
	}
	r.mu.Lock()
	first := r.why == nil
	if first {
		r.why = err
	}
	r.mu.Unlock()
	if first {
		f.logger.Warn("tokencache: the OS keyring cannot be used; keeping tokens in files", "operation", what, "error", err.Error(), "dir", f.dir)
	}
	return zero, r.off()
}

// off returns nil while the keyring is used, else why it is not.
func (r *ring) off() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.why == nil {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrKeyringUnavailable, r.why)
}

// load returns what the keyring keeps under key: the item's text and
// whether there is one.
func (r *ring) load(ctx context.Context, f *File, key string) (string, bool) {
	text, err := ringDo(ctx, r, f, "read", func() (string, error) { return r.store.get(keyringService, account(key)) })
	return text, err == nil
}

// save keeps data under key; false when the keyring did not take it.
func (r *ring) save(ctx context.Context, f *File, key string, data []byte) bool {
	_, err := ringDo(ctx, r, f, "save", func() (struct{}, error) {
		return struct{}{}, r.store.set(keyringService, account(key), string(data))
	})
	return err == nil
}

// remove deletes key's item; no item is no error. An error wraps
// ErrKeyringUnavailable (or is ctx's).
func (r *ring) remove(ctx context.Context, f *File, key string) error {
	_, err := ringDo(ctx, r, f, "delete", func() (struct{}, error) {
		return struct{}{}, r.store.del(keyringService, account(key))
	})
	if errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return err
}
