// Package tokencache keeps OAuth2 tokens between runs of a program, so that
// a person who logged in through the browser (PKCE) or with a device code
// is not asked again at every start, and a refresh token outlives the
// process that got it.
//
// [File] is the cache (NewFile, configured by Option: WithDir, WithLogger,
// WithKeyring): one JSON file per cache key (the service endpoint, the
// client id, the token endpoint, the scopes and the audience; see
// authenticator.Keeper.CacheKey) in a directory of the user's own, by
// default $XDG_CACHE_HOME/grpcauth/tokens on Linux (~/.cache/grpcauth/tokens),
// ~/Library/Caches/grpcauth/tokens on macOS and %LocalAppData%\grpcauth\tokens
// on Windows: os.UserCacheDir, since a lost cache costs only a new login.
// Files are mode 0600 in a 0700 directory, written to a temporary file and
// renamed into place, and every change holds an exclusive lock on the
// directory's lock file, so several processes (two `grpcauth token` runs, a
// CLI and a daemon) can share one cache. A file that cannot be read, is not
// JSON of this package, belongs to another key or to another user is
// ignored with a warning on the logger: a cache is an optimisation, never a
// reason to fail.
//
// With WithKeyring, the entries are items of the OS keyring instead (the
// Secret Service on Linux, the Keychain on macOS, the Credential Manager on
// Windows, through github.com/zalando/go-keyring, as flytectl does), under
// the service "grpcauth" and the hex of the first 16 bytes of the key's
// SHA-256; the directory keeps the lock. A keyring that cannot be used
// sends the entries back to files, with one warning.
//
// A File implements authenticator.TokenCache; hand it to a Keeper with
// authenticator.WithCache (grpcauth.New does for the interactive flows).
// Tokens never appear in its logs, errors or String.
package tokencache
