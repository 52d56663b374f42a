package interop

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// load runs workers that call the echo service, mostly unary, every fourth
// call a server stream, until told to stop. It is safe for concurrent use.
type load struct {
	// pace is the least time between the starts of two calls of a worker;
	// 0 calls back to back. Set it before run.
	pace time.Duration

	ok     atomic.Int64
	failed atomic.Int64

	mu      sync.Mutex // guards errors and waiters
	errors  map[string]int
	waiters []waiter
}

// waiter is a channel to close once n calls have succeeded.
type waiter struct {
	n  int64
	ch chan struct{}
}

// after returns a channel that is closed once n calls in all have
// succeeded.
func (l *load) after(n int64) <-chan struct{} {
	ch := make(chan struct{})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok.Load() >= n {
		close(ch)
		return ch
	}
	l.waiters = append(l.waiters, waiter{n: n, ch: ch})
	return ch
}

// succeeded counts a successful call and wakes the waiters it satisfies.
func (l *load) succeeded() {
	n := l.ok.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if n >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	l.waiters = kept
}

// run starts n workers that start calls until stop is done, and returns a
// function that waits for them. The calls themselves do not end with stop:
// each runs to its end under its own deadline, so stopping the run never
// fails a call.
func (l *load) run(stop context.Context, echo *testserver.EchoClient, n int) (wait func()) {
	ctx := context.WithoutCancel(stop)
	l.mu.Lock()
	l.errors = make(map[string]int)
	l.mu.Unlock()
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			var tick <-chan time.Time
			if l.pace > 0 {
				t := time.NewTicker(l.pace)
				defer t.Stop()
				tick = t.C
			}
			for i := 0; stop.Err() == nil; i++ {
				if tick != nil && i > 0 {
					select {
					case <-tick:
					case <-stop.Done():
						return
					}
				}
				msg := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if i%4 == 3 {
					var got []string
					callCtx, cancel := context.WithTimeout(ctx, callTimeout)
					got, err = echo.ServerStream(callCtx, msg)
					cancel()
					if err == nil && len(got) != 3 {
						err = fmt.Errorf("server stream: %d answers, want 3", len(got))
					}
				} else {
					err = unary(ctx, echo, msg)
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					l.errors[status.Code(err).String()+": "+status.Convert(err).Message()]++
					l.mu.Unlock()
					continue
				}
				l.succeeded()
			}
		})
	}
	return wg.Wait
}

// errorSummary returns the distinct errors and their counts.
func (l *load) errorSummary() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.errors))
	for k, v := range l.errors {
		out[k] = v
	}
	return out
}
