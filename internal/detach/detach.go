// Package detach runs a call that cannot be interrupted (a file read, a
// D-Bus call to the OS keyring) on a goroutine of its own, so that its
// caller can stop waiting for it.
package detach

import "context"

// Call runs op and returns what it returns, or, should ctx end first,
// ctx's cause at once: op then finishes on its own and its result is
// dropped, so op must touch nothing of the caller's.
func Call[T any](ctx context.Context, op func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := op()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}
