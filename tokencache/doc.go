// Package tokencache keeps OAuth2 tokens between runs of a program, so that
// a person who logged in through the browser (PKCE) or with a device code
// is not asked again at every start, and a refresh token outlives the
// process that got it.
//
// [File] is the cache (NewFile, configured by Option: WithDir, WithLogger):
// one JSON file per cache key (the service endpoint
// and the client id, see authenticator.CacheKey) in a directory of the
// user's own, by default $XDG_CACHE_HOME/grpcauth/tokens on Linux
// (~/.cache/grpcauth/tokens), ~/Library/Caches/grpcauth/tokens on macOS and
// %LocalAppData%\grpcauth\tokens on Windows: os.UserCacheDir, since a lost
// cache costs only a new login. Files are mode 0600 in a 0700 directory,
// written to a temporary file and renamed into place, and every change
// holds an exclusive lock on the directory's lock file, so several
// processes (two `grpcauth token` runs, a CLI and a daemon) can share one
// cache. A file that cannot be read, is not JSON of this package, belongs
// to another key or to another user is ignored with a warning on the
// logger: a cache is an optimisation, never a reason to fail.
//
// A File implements authenticator.TokenCache; hand it to a Keeper with
// authenticator.WithCache (grpcauth.New does for the interactive flows). Tokens never appear in its logs, errors or
// String. There is no OS keyring backend yet: the maintained Go keyring
// libraries need a desktop session (D-Bus Secret Service on Linux), which
// headless machines and CI lack.
package tokencache
