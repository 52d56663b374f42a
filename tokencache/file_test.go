package tokencache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/tokencache"
)

var _ authenticator.TokenCache = (*tokencache.File)(nil)

const (
	helperEnv     = "GRPCAUTH_TOKENCACHE_WRITER_DIR"
	helperNameEnv = "GRPCAUTH_TOKENCACHE_WRITER_NAME"
	// writes is how many tokens each concurrent writer saves.
	writes = 100
)

var key = "dns:///admin.example:443\x00flytectl\x00https://idp.example/token\x00openid offline\x00\x00"

// logBuffer is a slog handler's output, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newCache(t *testing.T, dir string) (*tokencache.File, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	c, err := tokencache.NewFile(tokencache.WithDir(dir), tokencache.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	require.NoError(t, err)
	return c, logs
}

func testToken(access string) *oauth2.Token {
	return &oauth2.Token{
		AccessToken:  access,
		TokenType:    "Bearer",
		RefreshToken: "refresh-" + access,
		Expiry:       time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC),
	}
}

func TestSaveLoadDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	c, logs := newCache(t, dir)
	ctx := t.Context()

	got, err := c.Load(ctx, key)
	require.NoError(t, err)
	require.Nil(t, got, "an empty cache has no token")
	require.NoError(t, c.Delete(ctx, key), "deleting from a cache that was never written")

	want := testToken("access-1")
	require.NoError(t, c.Save(ctx, key, want))
	got, err = c.Load(ctx, key)
	require.NoError(t, err)
	require.Equal(t, want.AccessToken, got.AccessToken)
	require.Equal(t, want.RefreshToken, got.RefreshToken)
	require.Equal(t, want.TokenType, got.TokenType)
	require.True(t, want.Expiry.Equal(got.Expiry))

	other, err := c.Load(ctx, "dns:///admin.example:443\x00other")
	require.NoError(t, err)
	require.Nil(t, other, "another client id is another key")

	require.NoError(t, c.Save(ctx, key, testToken("access-2")))
	got, err = c.Load(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "access-2", got.AccessToken, "Save replaces")

	require.NoError(t, c.Delete(ctx, key))
	got, err = c.Load(ctx, key)
	require.NoError(t, err)
	require.Nil(t, got)
	require.NoError(t, c.Delete(ctx, key), "deleting twice")
	require.Empty(t, logs.String(), "nothing worth a warning happened")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".tmp"), "a temporary file was left: %s", e.Name())
	}
}

func TestFileNameHidesTheKey(t *testing.T) {
	c, _ := newCache(t, t.TempDir())
	p := c.Path(key)
	require.NotContains(t, p, "admin.example")
	require.NotContains(t, p, "flytectl")
	require.Equal(t, p, c.Path(key), "the name is stable")
	require.NotEqual(t, p, c.Path(key+"x"))
}

func TestPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "a", "tokens")
	c, _ := newCache(t, dir)
	require.NoError(t, c.Save(t.Context(), key, testToken("x")))

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "directory mode")
	fi, err = os.Stat(c.Path(key))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "file mode")

	// A file someone opened up is 0600 again once rewritten.
	require.NoError(t, os.Chmod(c.Path(key), 0o644))
	require.NoError(t, c.Save(t.Context(), key, testToken("y")))
	fi, err = os.Stat(c.Path(key))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "file mode after a rewrite")
}

func TestRefusesADirectoryOthersMayWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o775))
	c, _ := newCache(t, dir)
	err := c.Save(t.Context(), key, testToken("x"))
	require.ErrorContains(t, err, "other users may write to it")
	require.ErrorContains(t, err, dir)
	_, statErr := os.Stat(c.Path(key))
	require.ErrorIs(t, statErr, os.ErrNotExist, "nothing was written")
}

func TestUnusableFilesAreIgnoredWithAWarning(t *testing.T) {
	other := "dns:///elsewhere:443\x00flytectl"
	foreign, err := jsonRecord(other, "someone-elses")
	require.NoError(t, err)
	empty, err := jsonRecord(key, "")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, content, warning string
	}{
		{"garbage", "\x00\xffnot json at all", "not valid JSON"},
		{"truncated", `{"version":1,"key":"`, "not valid JSON"},
		{"empty", "", "not valid JSON"},
		{"json array", `[1,2,3]`, "not valid JSON"},
		{"other version", `{"version":7,"key":"x","access_token":"secret-at"}`, "version 7"},
		{"no version", `{"access_token":"secret-at"}`, "version 0"},
		{"other key", foreign, "belongs to another endpoint or client"},
		{"no token", empty, "holds no token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, logs := newCache(t, t.TempDir())
			require.NoError(t, os.WriteFile(c.Path(key), []byte(tc.content), 0o600))
			got, err := c.Load(t.Context(), key)
			require.NoError(t, err, "a bad file is no error")
			require.Nil(t, got)
			require.Contains(t, logs.String(), tc.warning)
			require.Contains(t, logs.String(), "level=WARN")
			require.NotContains(t, logs.String(), "secret-at")
			require.NotContains(t, logs.String(), "someone-elses")

			// A Save replaces the bad file.
			require.NoError(t, c.Save(t.Context(), key, testToken("fresh")))
			got, err = c.Load(t.Context(), key)
			require.NoError(t, err)
			require.Equal(t, "fresh", got.AccessToken)
		})
	}
}

func TestUnreadableFileIsIgnored(t *testing.T) {
	c, logs := newCache(t, t.TempDir())
	require.NoError(t, os.Mkdir(c.Path(key), 0o700)) // a directory where the file should be
	got, err := c.Load(t.Context(), key)
	require.NoError(t, err)
	require.Nil(t, got)
	require.Contains(t, logs.String(), "level=WARN")
}

func TestNoTokenInStringOrLogs(t *testing.T) {
	c, logs := newCache(t, t.TempDir())
	tok := testToken("very-secret-access")
	require.NoError(t, c.Save(t.Context(), key, tok))
	// A file of the wrong key that holds the token: the warning names the
	// file, not what is in it.
	data, err := os.ReadFile(c.Path(key))
	require.NoError(t, err)
	other := "x\x00y"
	require.NoError(t, os.WriteFile(c.Path(other), data, 0o600))
	_, err = c.Load(t.Context(), other)
	require.NoError(t, err)

	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c, c, c), logs.String()} {
		require.NotContains(t, s, tok.AccessToken)
		require.NotContains(t, s, tok.RefreshToken)
	}
}

func TestSaveRejectsAnEmptyToken(t *testing.T) {
	c, _ := newCache(t, t.TempDir())
	require.Error(t, c.Save(t.Context(), key, nil))
	require.Error(t, c.Save(t.Context(), key, &oauth2.Token{}))
	// A refresh token alone is worth keeping.
	require.NoError(t, c.Save(t.Context(), key, &oauth2.Token{RefreshToken: "r"}))
}

func TestOptions(t *testing.T) {
	_, err := tokencache.NewFile(tokencache.WithDir(""))
	require.Error(t, err)
	_, err = tokencache.NewFile(tokencache.WithLogger(nil))
	require.Error(t, err)

	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	c, err := tokencache.NewFile()
	require.NoError(t, err)
	def := c.Dir()
	require.True(t, strings.HasSuffix(def, filepath.Join("grpcauth", "tokens")), def)
	_, err = os.Stat(def)
	require.ErrorIs(t, err, os.ErrNotExist, "NewFile creates nothing")
}

func TestSaveWaitsForTheLockAndHonoursCtx(t *testing.T) {
	dir := t.TempDir()
	c, _ := newCache(t, dir)
	require.NoError(t, c.Save(t.Context(), key, testToken("first")))

	// Another holder of the directory's lock, as another process would be.
	release := holdLock(t, dir)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Save(ctx, key, testToken("second")) }()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Save did not give up when its context ended")
	}
	got, err := c.Load(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, "first", got.AccessToken, "reads do not wait for the lock")

	done2 := make(chan error, 1)
	go func() { done2 <- c.Save(t.Context(), key, testToken("third")) }()
	release()
	select {
	case err := <-done2:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Save did not get the lock once it was released")
	}
	got, err = c.Load(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, "third", got.AccessToken)
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			c, err := tokencache.NewFile(tokencache.WithDir(dir))
			if err != nil {
				errs <- err
				return
			}
			errs <- writeAndCheck(context.Background(), c, fmt.Sprintf("g%d", i))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireNoTempFiles(t, dir)
}

// TestTwoProcessesShareOneCache runs two writer processes (this test
// binary again) and a writer goroutine on one directory at once.
func TestTwoProcessesShareOneCache(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := range 2 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir, fmt.Sprintf("%s=p%d", helperNameEnv, i))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	c, _ := newCache(t, dir)
	require.NoError(t, writeAndCheck(t.Context(), c, "parent"))
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "writer process %d: %s", i, outs[i])
	}
	got, err := c.Load(t.Context(), key)
	require.NoError(t, err)
	require.NotNil(t, got)
	requireNoTempFiles(t, dir)
}

// writerProcess is the child of TestTwoProcessesShareOneCache.
func writerProcess(dir, name string) int {
	c, err := tokencache.NewFile(tokencache.WithDir(dir))
	if err == nil {
		err = writeAndCheck(context.Background(), c, name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// writeAndCheck saves writes tokens named after name and, after each,
// loads what is there: a whole token of some writer, never a torn one.
func writeAndCheck(ctx context.Context, c *tokencache.File, name string) error {
	for n := range writes {
		access := fmt.Sprintf("%s-%d", name, n)
		if err := c.Save(ctx, key, testToken(access)); err != nil {
			return err
		}
		got, err := c.Load(ctx, key)
		if err != nil {
			return err
		}
		if got == nil {
			return errors.New("a saved token could not be loaded")
		}
		if got.RefreshToken != "refresh-"+got.AccessToken {
			return fmt.Errorf("torn token: access %q with refresh %q", got.AccessToken, got.RefreshToken)
		}
	}
	return nil
}

func requireNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".tmp"), "a temporary file was left: %s", e.Name())
	}
}
