package tokencache

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
)

// slowKeyring is a keyring whose get answers only once release is closed;
// entered is closed when get was called.
type slowKeyring struct {
	*memKeyring
	entered chan struct{}
	release chan struct{}
}

func (s *slowKeyring) get(service, user string) (string, error) {
	close(s.entered)
	<-s.release
	return s.memKeyring.get(service, user)
}

// signalWriter closes seen the first time a write holds want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

// A keyring read that times out leaves its operation running; when the
// keyring answers late, after the File warned and went on, the operation
// touches nothing the File reads (go test -race would see it) and ends.
func TestKeyringReadThatTimesOutLeavesNothingBehind(t *testing.T) {
	old := keyringWait
	keyringWait = 20 * time.Millisecond
	t.Cleanup(func() { keyringWait = old })

	mem := newMemKeyring()
	mem.items[keyringService+"/"+account(ringKey)] = `{"version":1,"key":"x","access_token":"late"}`
	store := &slowKeyring{memKeyring: mem, entered: make(chan struct{}), release: make(chan struct{})}
	logs := &signalWriter{want: "the OS keyring cannot be used", seen: make(chan struct{})}
	f, err := NewFile(WithDir(t.TempDir()), WithKeyring(), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	require.NoError(t, err)
	f.ring.store = store

	before := goleak.IgnoreCurrent()
	// The keyring answers late: once the File gave up on it and warned.
	released := make(chan struct{})
	go func() {
		defer close(released)
		<-store.entered
		<-logs.seen
		close(store.release)
	}()

	got, err := f.Load(context.Background(), ringKey)
	require.NoError(t, err)
	assert.Nil(t, got, "no file either")
	<-released
	// Wait for the abandoned operation to have ended (and written text).
	require.NoError(t, goleak.Find(before))
}

// grpcauth logout (File.Delete) removes the login wherever it is kept.
// With the keyring, the token lives only in a keyring item; when the cache
// directory is gone (the person removed it, or a tmp cleaner did), Delete
// still removes the item.
func TestKeyringDeleteWithoutTheDirectoryRemovesTheItem(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "cache")
	store := newMemKeyring()
	var logs bytes.Buffer
	f := ringFile(t, dir, store, &logs)
	tok := &oauth2.Token{AccessToken: "at-review-dirgone", RefreshToken: "rt-review-dirgone"}
	require.NoError(t, f.Save(ctx, ringKey, tok))
	_, ok := store.item(ringKey)
	require.True(t, ok)

	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, f.Delete(ctx, ringKey), "logout reports success")

	_, ok = store.item(ringKey)
	assert.False(t, ok, "logout left the refresh token in the keyring")
	next := ringFile(t, dir, store, &logs) // the next process
	got, err := next.Load(ctx, ringKey)
	require.NoError(t, err)
	assert.Nil(t, got, "the next process is still logged in after logout")
}

// A keyring that fails the delete of logout (locked, the unlock prompt not
// answered within 3 s) turns the keyring off; Delete removes the file and
// says that the keyring, which may still hold the login, could not be
// asked: logout never says it worked when it did not.
func TestKeyringDeleteThatFailsSaysSo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := newMemKeyring()
	var logs bytes.Buffer
	first := ringFile(t, dir, store, &logs)
	require.NoError(t, first.Save(ctx, ringKey, &oauth2.Token{AccessToken: "at-review-del", RefreshToken: "rt-review-del"}))

	logout := ringFile(t, dir, store, &logs)
	store.mu.Lock()
	store.fail = errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'")
	store.mu.Unlock()
	err := logout.Delete(ctx, ringKey)

	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
	got, lerr := ringFile(t, dir, store, &logs).Load(ctx, ringKey)
	require.NoError(t, lerr)
	require.ErrorIs(t, err, ErrKeyringUnavailable, "logout says the keyring could not be asked")
	assert.NotNil(t, got, "the keyring still holds the login, as the error says")
}
