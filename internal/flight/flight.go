// Package flight runs one piece of shared work for any number of concurrent
// callers, detached from each caller's cancellation: the single flight that
// the config store and the token keeper both need.
package flight

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrStoppedWaiting is wrapped by the error of a caller whose context ended
// before the flight did.
var ErrStoppedWaiting = errors.New("stopped waiting")

// Group runs at most one flight at a time. The zero value is ready to use
// and it is safe for concurrent use.
type Group[T any] struct {
	g singleflight.Group // one flight at a time; its key is constant
}

// Do runs fn once for all the callers that arrive while it runs: the first
// starts it, the others join. fn runs on a context that keeps ctx's values
// but not its cancellation, bounded by timeout and ended early when life
// ends (life may be nil). Each caller waits until fn returns or its own ctx
// ends; a caller that stops waiting does not stop fn for the others, and
// gets an error that wraps ErrStoppedWaiting and context.Cause(ctx).
func (g *Group[T]) Do(ctx, life context.Context, timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	ch := g.g.DoChan("", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if life != nil {
			stop := context.AfterFunc(life, cancel)
			defer stop()
		}
		return fn(fctx)
	})
	select {
	case r := <-ch:
		v, _ := r.Val.(T)
		return v, r.Err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%w: %w", ErrStoppedWaiting, context.Cause(ctx))
	}
}
