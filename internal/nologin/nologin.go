// Package nologin marks a context on which a token request may not ask a
// person: a background refresh, the Keeper's turn under the cache lock,
// and `grpcauth token`, which prints a token for another program and has
// nobody to show a login to. A flow that would have to log in fails with
// ErrNeeded instead.
package nologin

import (
	"context"
	"errors"
)

type key struct{}

// Context returns ctx marked: no login on it.
func Context(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, true) }

// Forbidden reports whether ctx is marked.
func Forbidden(ctx context.Context) bool { return ctx.Value(key{}) != nil }

// ErrNeeded is wrapped by the error of a token request on a marked context
// when only a new login would get a token.
var ErrNeeded = errors.New("only a new login would get a token")
