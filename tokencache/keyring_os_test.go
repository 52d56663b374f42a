package tokencache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/tokencache"
)

const (
	// keyringTestEnv says what TestOSKeyring meets: "secret-service" (a
	// running, unlocked Secret Service; make keyring-test starts Debian's
	// gnome-keyring under dbus-run-session) or "none" (no Secret Service).
	keyringTestEnv = "GRPCAUTH_KEYRING_TEST"
	// counterEnv makes the test binary a counting process of
	// TestOSKeyring, in the cache directory it names.
	counterEnv = "GRPCAUTH_KEYRING_COUNTER_DIR"
	// counts is how many increments each counting process makes.
	counts = 20
)

// The OS keyring as it is: save, load from another File, update from
// several processes under the directory's lock, delete (logout); or, with
// no Secret Service, the same through files and one warning.
func TestOSKeyring(t *testing.T) {
	want := os.Getenv(keyringTestEnv)
	switch want {
	case "":
		t.Skip("needs " + keyringTestEnv + "=secret-service or none: make keyring-test")
	case "secret-service", "none":
	default:
		t.Fatalf("%s=%q: want secret-service or none", keyringTestEnv, want)
	}
	ctx := t.Context()
	dir := t.TempDir()
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := tokencache.NewFile(tokencache.WithDir(dir), tokencache.WithKeyring(), tokencache.WithLogger(logger))
	require.NoError(t, err)
	b, err := tokencache.NewFile(tokencache.WithDir(dir), tokencache.WithKeyring(), tokencache.WithLogger(logger))
	require.NoError(t, err)
	k := fmt.Sprintf("%s\x00%d", key, time.Now().UnixNano()) // nothing left from an earlier run
	tok := &oauth2.Token{AccessToken: "at-os-keyring", RefreshToken: "rt-os-keyring", Expiry: time.Now().Add(time.Hour)}

	require.NoError(t, a.Save(ctx, k, tok))
	item, itemErr := keyring.Get("grpcauth", itemUser(k))
	if want == "secret-service" {
		require.NoError(t, itemErr, "the Secret Service holds the item")
		assert.Contains(t, item, "rt-os-keyring")
		assert.NoFileExists(t, a.Path(k), "no file holds the token")
	} else {
		require.Error(t, itemErr)
		assert.FileExists(t, a.Path(k), "the token went to a file")
	}
	got, err := b.Load(ctx, k)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, tok.RefreshToken, got.RefreshToken)

	// Processes that change the entry one after another, each under the
	// lock: no increment is lost.
	require.NoError(t, a.Save(ctx, key, &oauth2.Token{RefreshToken: "0"}))
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), counterEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "counting process %d: %s", i, outs[i])
	}
	got, err = b.Load(ctx, key)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, strconv.Itoa(2*counts), got.RefreshToken, "every increment of both processes is kept")

	// Logout.
	for _, kk := range []string{k, key} {
		if err := b.Delete(ctx, kk); want == "secret-service" {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, tokencache.ErrKeyringUnavailable, "logout says the keyring could not be asked")
		}
		got, err = a.Load(ctx, kk)
		require.NoError(t, err)
		assert.Nil(t, got)
		_, err = keyring.Get("grpcauth", itemUser(kk))
		assert.Error(t, err, "no item is left")
		assert.NoFileExists(t, a.Path(kk))
	}

	out := logs.String()
	if want == "secret-service" {
		assert.NotContains(t, out, "cannot be used")
	} else {
		assert.Contains(t, out, "the OS keyring cannot be used; keeping tokens in files")
	}
	assert.NotContains(t, out, "rt-os-keyring")
	t.Logf("keyring %s: %s", want, out)
}

// itemUser is the keyring item's user for key, as WithKeyring documents:
// the hex of the first 16 bytes of the key's SHA-256.
func itemUser(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// counterProcess adds counts to the number the entry of key holds, one
// Update at a time, in the cache in dir.
func counterProcess(dir string) int {
	c, err := tokencache.NewFile(tokencache.WithDir(dir), tokencache.WithKeyring())
	for i := 0; i < counts && err == nil; i++ {
		err = c.Update(context.Background(), key, func(cur *oauth2.Token) (*oauth2.Token, error) {
			if cur == nil {
				return nil, errors.New("the entry is gone")
			}
			n, err := strconv.Atoi(cur.RefreshToken)
			if err != nil {
				return nil, err
			}
			return &oauth2.Token{RefreshToken: strconv.Itoa(n + 1)}, nil
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
