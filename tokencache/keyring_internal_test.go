package tokencache

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"
)

// memKeyring is a keyring in memory, shared by the Files of a test as the
// OS keyring is by processes. fail makes every operation fail with it;
// hang makes every operation wait until it is closed.
type memKeyring struct {
	mu    sync.Mutex
	items map[string]string
	fail  error
	hang  chan struct{}
	ops   int
}

func newMemKeyring() *memKeyring { return &memKeyring{items: map[string]string{}} }

func (m *memKeyring) op() error {
	m.mu.Lock()
	m.ops++
	hang, fail := m.hang, m.fail
	m.mu.Unlock()
	if hang != nil {
		<-hang
	}
	return fail
}

func (m *memKeyring) get(service, user string) (string, error) {
	if err := m.op(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[service+"/"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (m *memKeyring) set(service, user, secret string) error {
	if err := m.op(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[service+"/"+user] = secret
	return nil
}

func (m *memKeyring) del(service, user string) error {
	if err := m.op(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[service+"/"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(m.items, service+"/"+user)
	return nil
}

func (m *memKeyring) item(key string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[keyringService+"/"+account(key)]
	return v, ok
}

// ringFile is a File in dir whose keyring is store, logging to logs.
func ringFile(t *testing.T, dir string, store secretStore, logs *bytes.Buffer) *File {
	t.Helper()
	f, err := NewFile(WithDir(dir), WithKeyring(), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	require.NoError(t, err)
	f.ring.store = store
	return f
}

const ringKey = "dns:///flyte.example.com\x00client\x00https://idp.example.com/token\x00offline_access\x00\x00"

func TestKeyringKeepsTheTokensAndTheFilesNone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := newMemKeyring()
	var logs bytes.Buffer
	a := ringFile(t, dir, store, &logs)
	b := ringFile(t, dir, store, &logs) // another process of the user
	tok := &oauth2.Token{AccessToken: "at-ring-1", RefreshToken: "rt-ring-1", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour).Round(0)}

	require.NoError(t, a.Save(ctx, ringKey, tok))
	item, ok := store.item(ringKey)
	require.True(t, ok, "the keyring holds the entry")
	assert.Contains(t, item, "rt-ring-1")
	assert.NoFileExists(t, a.Path(ringKey), "no file holds a token")

	got, err := b.Load(ctx, ringKey)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, tok.AccessToken, got.AccessToken)
	assert.Equal(t, tok.RefreshToken, got.RefreshToken)
	assert.True(t, tok.Expiry.Equal(got.Expiry))

	// Update reads and writes the item under the directory's lock.
	require.NoError(t, b.Update(ctx, ringKey, func(cur *oauth2.Token) (*oauth2.Token, error) {
		require.NotNil(t, cur)
		assert.Equal(t, "rt-ring-1", cur.RefreshToken)
		return &oauth2.Token{AccessToken: "at-ring-2", RefreshToken: "rt-ring-2"}, nil
	}))
	got, err = a.Load(ctx, ringKey)
	require.NoError(t, err)
	assert.Equal(t, "rt-ring-2", got.RefreshToken)

	require.NoError(t, a.Delete(ctx, ringKey))
	_, ok = store.item(ringKey)
	assert.False(t, ok, "logout leaves no item")
	got, err = b.Load(ctx, ringKey)
	require.NoError(t, err)
	assert.Nil(t, got)
	assert.Empty(t, logs.String(), "nothing to warn about")
}

func TestKeyringItemStaysSmall(t *testing.T) {
	ctx := context.Background()
	big := strings.Repeat("j", 3000) // a large JWT access token
	t.Run("with a refresh token: only it is kept", func(t *testing.T) {
		store := newMemKeyring()
		var logs bytes.Buffer
		f := ringFile(t, t.TempDir(), store, &logs)
		require.NoError(t, f.Save(ctx, ringKey, &oauth2.Token{AccessToken: big, RefreshToken: "rt-small", Expiry: time.Now().Add(time.Hour)}))
		item, ok := store.item(ringKey)
		require.True(t, ok)
		assert.LessOrEqual(t, len(item), maxKeyringItem)
		assert.NotContains(t, item, big)
		assert.NoFileExists(t, f.Path(ringKey))
		got, err := f.Load(ctx, ringKey)
		require.NoError(t, err)
		assert.Equal(t, "rt-small", got.RefreshToken)
		assert.Empty(t, got.AccessToken, "the next user redeems the refresh token")
	})
	t.Run("without one: a file", func(t *testing.T) {
		store := newMemKeyring()
		var logs bytes.Buffer
		f := ringFile(t, t.TempDir(), store, &logs)
		// An older, small entry in the keyring must not shadow the file.
		require.NoError(t, f.Save(ctx, ringKey, &oauth2.Token{AccessToken: "old"}))
		require.NoError(t, f.Save(ctx, ringKey, &oauth2.Token{AccessToken: big}))
		_, ok := store.item(ringKey)
		assert.False(t, ok)
		assert.FileExists(t, f.Path(ringKey))
		got, err := f.Load(ctx, ringKey)
		require.NoError(t, err)
		assert.Equal(t, big, got.AccessToken)
	})
}

// A file written while the keyring could not be used is still read; the
// next save moves the entry into the keyring.
func TestKeyringReadsAnOlderFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	plain, err := NewFile(WithDir(dir))
	require.NoError(t, err)
	require.NoError(t, plain.Save(ctx, ringKey, &oauth2.Token{AccessToken: "from-file", RefreshToken: "rt-file"}))

	store := newMemKeyring()
	var logs bytes.Buffer
	f := ringFile(t, dir, store, &logs)
	got, err := f.Load(ctx, ringKey)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "rt-file", got.RefreshToken)
	require.NoError(t, f.Save(ctx, ringKey, &oauth2.Token{AccessToken: "moved", RefreshToken: "rt-moved"}))
	_, ok := store.item(ringKey)
	assert.True(t, ok)
	assert.NoFileExists(t, f.Path(ringKey), "one copy, in the keyring")
}

func TestKeyringThatCannotBeUsedFallsBackToFiles(t *testing.T) {
	ctx := context.Background()
	for name, broken := range map[string]func(*memKeyring){
		"fails": func(m *memKeyring) {
			m.fail = errors.New(`failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'`)
		},
		"hangs":   func(m *memKeyring) { m.hang = make(chan struct{}) },
		"no dbus": func(m *memKeyring) { m.fail = errors.New(`exec: "dbus-launch": executable file not found in $PATH`) },
	} {
		t.Run(name, func(t *testing.T) {
			old := keyringWait
			keyringWait = 50 * time.Millisecond
			t.Cleanup(func() { keyringWait = old })
			store := newMemKeyring()
			broken(store)
			if store.hang != nil {
				t.Cleanup(func() { close(store.hang) })
			}
			var logs bytes.Buffer
			f := ringFile(t, t.TempDir(), store, &logs)
			tok := &oauth2.Token{AccessToken: "at-fallback-secret", RefreshToken: "rt-fallback-secret"}
			require.NoError(t, f.Save(ctx, ringKey, tok), "the keyring never fails a save")
			assert.FileExists(t, f.Path(ringKey))
			got, err := f.Load(ctx, ringKey)
			require.NoError(t, err)
			require.NotNil(t, got)
			assert.Equal(t, tok.RefreshToken, got.RefreshToken)
			// Logout removes the file and says that the keyring, where
			// another session may have kept a login, could not be asked.
			err = f.Delete(ctx, ringKey)
			require.ErrorIs(t, err, ErrKeyringUnavailable)
			assert.Contains(t, err.Error(), "a login kept there may remain")
			assert.NoFileExists(t, f.Path(ringKey))

			out := logs.String()
			assert.Equal(t, 1, strings.Count(out, "the OS keyring cannot be used"), "warned once:\n%s", out)
			store.mu.Lock()
			ops := store.ops
			store.mu.Unlock()
			assert.Equal(t, 1, ops, "the keyring is not asked again after it failed")
			for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
				assert.NotContains(t, out, secret)
			}
		})
	}
}

// A keyring item that is not ours is ignored, as a file would be.
func TestKeyringItemOfAnotherKey(t *testing.T) {
	store := newMemKeyring()
	var logs bytes.Buffer
	f := ringFile(t, t.TempDir(), store, &logs)
	store.items[keyringService+"/"+account(ringKey)] = `{"version":1,"key":"other","access_token":"x"}`
	got, err := f.Load(context.Background(), ringKey)
	require.NoError(t, err)
	assert.Nil(t, got)
	assert.Contains(t, logs.String(), "belongs to another endpoint or client")

}
