package tokencache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
// off for the File's life.
type ring struct {
	store secretStore
	off   atomic.Bool
}

// errRingOff is the error of an operation on a keyring that is off.
var errRingOff = errors.New("the keyring is not used")

// account is the item's user for key.
func account(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// do runs op on the keyring, bounded by keyringWait and ctx. A failure
// other than no item turns the keyring off, with a warning; so does a
// timeout, whose operation is left to end on its own (a D-Bus call is
// bounded by the bus's own reply timeout).
func (r *ring) do(ctx context.Context, f *File, what string, op func() error) error {
	if r.off.Load() {
		return errRingOff
	}
	done := make(chan error, 1)
	go func() { done <- op() }()
	t := time.NewTimer(keyringWait)
	defer t.Stop()
	var err error
	select {
	case err = <-done:
	case <-t.C:
		err = fmt.Errorf("no answer within %s", keyringWait)
	case <-ctx.Done():
		return ctx.Err()
	}
	if err == nil || errors.Is(err, keyring.ErrNotFound) {
		return err
	}
	if r.off.CompareAndSwap(false, true) {
		f.logger.Warn("tokencache: the OS keyring cannot be used; keeping tokens in files", "operation", what, "error", err.Error(), "dir", f.dir)
	}
	return errRingOff
}

// load returns what the keyring keeps under key: the item's text and
// whether there is one.
func (r *ring) load(ctx context.Context, f *File, key string) (string, bool) {
	var text string
	err := r.do(ctx, f, "read", func() (err error) {
		text, err = r.store.get(keyringService, account(key))
		return err
	})
	return text, err == nil
}

// save keeps data under key; false when the keyring did not take it.
func (r *ring) save(ctx context.Context, f *File, key string, data []byte) bool {
	return r.do(ctx, f, "save", func() error { return r.store.set(keyringService, account(key), string(data)) }) == nil
}

// remove deletes key's item; no item is no error.
func (r *ring) remove(ctx context.Context, f *File, key string) {
	_ = r.do(ctx, f, "delete", func() error { return r.store.del(keyringService, account(key)) })
}
