package tokencache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/oauth2"
)

const (
	// dirName is the directory under os.UserCacheDir that defaultDir
	// names.
	dirName = "grpcauth/tokens"
	// lockName is the lock file every change of a directory holds.
	lockName = ".lock"
	// fileVersion is the "version" of the files this package writes; a
	// file of another version is ignored.
	fileVersion = 1
	// maxFileSize bounds what Load reads: a token file is a few KB.
	maxFileSize = 1 << 20
	// lockRetry is how often a lock held by another process is tried
	// again while the caller's context allows.
	lockRetry = 10 * time.Millisecond

	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// File is a token cache in a directory: one file per key. The zero value
// is not usable; build one with NewFile. It is safe for concurrent use, by
// goroutines and by processes.
type File struct {
	dir    string
	logger *slog.Logger
	ring   *ring // the OS keyring that keeps the tokens (WithKeyring), or nil
}

// Option configures NewFile.
type Option func(*File) error

// WithDir keeps the tokens in dir instead of the default directory (the user cache directory's grpcauth/tokens). The directory is
// created with mode 0700 when missing; an existing one that other users
// may write to is refused when a token is saved.
func WithDir(dir string) Option {
	return func(f *File) error {
		if dir == "" {
			return errors.New("tokencache: WithDir: empty directory")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("tokencache: WithDir: %w", err)
		}
		f.dir = abs
		return nil
	}
}

// WithLogger sets the logger that warns about unreadable or foreign cache
// files. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(f *File) error {
		if l == nil {
			return errors.New("tokencache: WithLogger: nil logger")
		}
		f.logger = l
		return nil
	}
}

// defaultDir returns the directory a File uses without WithDir:
// os.UserCacheDir()/grpcauth/tokens.
func defaultDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("tokencache: no user cache directory (set XDG_CACHE_HOME or HOME, or choose a directory): %w", err)
	}
	return filepath.Join(base, filepath.FromSlash(dirName)), nil
}

// NewFile returns a cache in the default directory or the directory WithDir names. It
// touches nothing on disk until the first Save.
func NewFile(opts ...Option) (*File, error) {
	f := &File{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(f); err != nil {
			return nil, err
		}
	}
	if f.dir == "" {
		dir, err := defaultDir()
		if err != nil {
			return nil, err
		}
		f.dir = dir
	}
	return f, nil
}

// Dir returns the directory the tokens are kept in.
func (f *File) Dir() string { return f.dir }

// Path returns the file the token of key is kept in: the SHA-256 of the
// key, so that no endpoint or client id shows in a file name.
func (f *File) Path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(f.dir, hex.EncodeToString(sum[:16])+".json")
}

// String names the cache directory; it never shows a token.
func (f *File) String() string { return "tokencache.File(" + f.dir + ")" }

// record is what a cache file holds. Key is the whole cache key, so that
// a file that is not ours (a hash collision, a file copied from elsewhere)
// is recognised.
type record struct {
	Version      int       `json:"version"`
	Key          string    `json:"key"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// Load returns the token kept under key, or nil when there is none. A file
// (or keyring item) that cannot be used is ignored with a warning and
// reported as no token; only a cancelled ctx is an error.
func (f *File) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.ring != nil {
		if text, ok := f.ring.load(ctx, f, key); ok {
			return f.decode([]byte(text), key, "keyring item "+account(key)), nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	path := f.Path(key)
	data, ok := f.readFile(path)
	if !ok {
		return nil, nil
	}
	return f.decode(data, key, path), nil
}

// readFile returns the content of the cache file at path, and false when
// there is none or it cannot be used (with a warning).
func (f *File) readFile(path string) ([]byte, bool) {
	if err := checkDir(f.dir); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// Another user could have put the file there.
			f.warn("the token cache directory is not safe; ignoring it", path, err)
		}
		return nil, false
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		// A named pipe would block the read, a link could point anywhere.
		f.warn("the token cache file is not a regular file; ignoring it", path, nil)
		return nil, false
	}
	file, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		f.warn("cannot open the token cache file; ignoring it", path, err)
		return nil, false
	}
	defer file.Close()
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.warn("the token cache file is not a regular file; ignoring it", path, err)
		return nil, false
	}
	if err := checkOwner(file); err != nil {
		f.warn("the token cache file is not the user's own; ignoring it", path, err)
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(file, maxFileSize+1))
	if err != nil {
		f.warn("cannot read the token cache file; ignoring it", path, err)
		return nil, false
	}
	if len(data) > maxFileSize {
		f.warn("the token cache file is too large; ignoring it", path, nil)
		return nil, false
	}
	return data, true
}

// decode returns the token of a record read from where (a file or a
// keyring item), or nil, with a warning, when it is not key's.
func (f *File) decode(data []byte, key, where string) *oauth2.Token {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		// json's errors quote at most a type or an offset, never the
		// text, but say nothing more than "not JSON" to be sure.
		f.warn("the token cache entry is not valid JSON; ignoring it", where, nil)
		return nil
	}
	switch {
	case rec.Version != fileVersion:
		f.warn(fmt.Sprintf("the token cache entry has version %d, not %d; ignoring it", rec.Version, fileVersion), where, nil)
		return nil
	case rec.Key != key:
		f.warn("the token cache entry belongs to another endpoint or client; ignoring it", where, nil)
		return nil
	case rec.AccessToken == "" && rec.RefreshToken == "":
		f.warn("the token cache entry holds no token; ignoring it", where, nil)
		return nil
	}
	return &oauth2.Token{
		AccessToken:  rec.AccessToken,
		TokenType:    rec.TokenType,
		RefreshToken: rec.RefreshToken,
		Expiry:       rec.Expiry,
	}
}

// Save keeps tok under key: written to a temporary file in the directory
// and renamed over the old one, under the directory's lock, so a reader
// sees the old token or the new one, never a mix.
func (f *File) Save(ctx context.Context, key string, tok *oauth2.Token) error {
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return errors.New("tokencache: Save: no token to keep")
	}
	if err := f.ensureDir(); err != nil {
		return err
	}
	unlock, err := f.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f.write(ctx, key, tok)
}

// Delete removes the token kept under key; no token there is no error.
// With WithKeyring, an error that wraps ErrKeyringUnavailable says that
// the file is gone but the keyring could not be asked.
func (f *File) Delete(ctx context.Context, key string) error {
	if err := checkDir(f.dir); errors.Is(err, fs.ErrNotExist) && f.ring == nil {
		return ctx.Err()
	} else if errors.Is(err, fs.ErrNotExist) {
		// The keyring's item outlives the directory: take its lock anew.
		if err := f.ensureDir(); err != nil {
			return err
		}
	} else if err != nil {
		return err // the lock and the remove would act in another user's directory
	}
	unlock, err := f.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f.remove(ctx, key)
}

// Update reads the token kept under key and keeps what fn returns, all
// under the directory's lock, so that no other process changes the entry
// in between (another process's Update waits): fn gets the token kept, or
// nil when there is none or it cannot be used, and returns the token to
// keep; nil leaves the entry as it is, and a token with neither an access
// nor a refresh token removes it. An error of fn is returned as it is and
// nothing changes. The lock is held while fn runs: fn should be as short
// as one token request, never a login. ctx bounds the wait for the lock.
func (f *File) Update(ctx context.Context, key string, fn func(cur *oauth2.Token) (*oauth2.Token, error)) error {
	if err := f.ensureDir(); err != nil {
		return err
	}
	unlock, err := f.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := f.Load(ctx, key)
	if err != nil {
		return err
	}
	next, err := fn(cur)
	switch {
	case err != nil:
		return err
	case next == nil:
		return nil
	case next.AccessToken == "" && next.RefreshToken == "":
		// Best effort for the keyring: a keyring that cannot be asked
		// was warned about, and holds nothing this File saved.
		if f.ring != nil {
			_ = f.ring.remove(ctx, f, key)
		}
		return f.removeFile(key)
	}
	return f.write(ctx, key, next)
}

// write puts tok under key, in the keyring when there is one that takes
// it, else in a file, and removes the other copy; the caller holds the
// lock.
func (f *File) write(ctx context.Context, key string, tok *oauth2.Token) error {
	rec := record{
		Version:      fileVersion,
		Key:          key,
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("tokencache: encode the token: %w", err)
	}
	if f.ring != nil {
		item := data
		if len(item) > maxKeyringItem && rec.RefreshToken != "" {
			// The access token is short-lived: a process that finds
			// none redeems the refresh token.
			rec.AccessToken, rec.TokenType, rec.Expiry = "", "", time.Time{}
			item, _ = json.Marshal(rec)
		}
		if len(item) <= maxKeyringItem && f.ring.save(ctx, f, key, item) {
			return f.removeFile(key)
		}
		_ = f.ring.remove(ctx, f, key) // an older item would shadow the file
	}
	return f.writeFile(key, data)
}

// writeFile puts data in key's file; the caller holds the lock.
func (f *File) writeFile(key string, data []byte) error {
	tmp, err := os.CreateTemp(f.dir, ".token-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("tokencache: create a file in %s: %w", f.dir, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(fileMode); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("tokencache: chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("tokencache: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("tokencache: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokencache: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), f.Path(key)); err != nil {
		return fmt.Errorf("tokencache: rename into %s: %w", f.Path(key), err)
	}
	committed = true
	return nil
}

// remove deletes key's entry, item and file, for Delete; the caller
// holds the lock. The file goes even when the keyring cannot be asked,
// which the error then says.
func (f *File) remove(ctx context.Context, key string) error {
	var ringErr error
	if f.ring != nil {
		if ringErr = f.ring.remove(ctx, f, key); ringErr != nil && ctx.Err() == nil {
			ringErr = fmt.Errorf("tokencache: the token file is removed, but %w; a login kept there may remain", ringErr)
		}
	}
	return errors.Join(f.removeFile(key), ringErr)
}

// removeFile deletes key's file; the caller holds the lock.
func (f *File) removeFile(key string) error {
	if err := os.Remove(f.Path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tokencache: %w", err)
	}
	return nil
}

// ensureDir creates the directory with mode 0700, or checks that an
// existing one is not open to other users.
func (f *File) ensureDir() error {
	if err := os.MkdirAll(f.dir, dirMode); err != nil {
		return fmt.Errorf("tokencache: create %s: %w", f.dir, err)
	}
	return checkDir(f.dir)
}

// lock takes the exclusive lock of the directory, waiting for another
// process that holds it as long as ctx allows, and returns its release.
func (f *File) lock(ctx context.Context) (func(), error) {
	path := filepath.Join(f.dir, lockName)
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		// A link planted in a shared directory would make the lock create
		// or open its target.
		return nil, fmt.Errorf("tokencache: the lock file %s is not a regular file: remove it", path)
	}
	l := flock.New(path, flock.SetPermissions(fileMode))
	ok, err := l.TryLockContext(ctx, lockRetry)
	if err != nil {
		_ = l.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("tokencache: waiting for the lock of %s: %w", f.dir, ctxErr)
		}
		return nil, fmt.Errorf("tokencache: lock %s: %w", f.dir, err)
	}
	if !ok {
		_ = l.Close()
		return nil, fmt.Errorf("tokencache: could not lock %s", f.dir)
	}
	return func() { _ = l.Close() }, nil // Close unlocks
}

func (f *File) warn(msg, path string, err error) {
	attrs := []any{slog.String("file", path)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	f.logger.Warn("tokencache: "+msg, attrs...)
}
