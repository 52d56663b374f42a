package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// joinCtx reports, through joined, when a caller has started waiting:
// Do asks for Done only once the caller is in the flight.
type joinCtx struct {
	context.Context
	once   sync.Once
	joined *sync.WaitGroup
}

func (c *joinCtx) Done() <-chan struct{} {
	c.once.Do(c.joined.Done)
	return c.Context.Done()
}

func TestOneFlightForManyCallers(t *testing.T) {
	const n = 20
	var g Group[int]
	var runs atomic.Int64
	release := make(chan struct{})
	var joined, wg sync.WaitGroup
	joined.Add(n)
	results := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := &joinCtx{Context: context.Background(), joined: &joined}
			v, err := g.Do(ctx, nil, time.Minute, func(context.Context) (int, error) {
				runs.Add(1)
				<-release
				return 42, nil
			})
			if err == nil {
				results <- v
			}
		}()
	}
	joined.Wait() // every caller waits on the one flight
	close(release)
	wg.Wait()
	close(results)
	got := 0
	for v := range results {
		assert.Equal(t, 42, v)
		got++
	}
	assert.Equal(t, n, got)
	assert.EqualValues(t, 1, runs.Load(), "one flight for all callers")
}

func TestCallerThatStopsWaitingDoesNotStopTheFlight(t *testing.T) {
	var g Group[string]
	release := make(chan struct{})
	flightErr := make(chan error, 1)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := g.Do(ctx, nil, time.Minute, func(fctx context.Context) (string, error) {
			close(started)
			<-release
			flightErr <- fctx.Err()
			return "done", nil
		})
		errc <- err
	}()
	<-started
	cancel()
	err := <-errc
	require.ErrorIs(t, err, ErrStoppedWaiting)
	require.ErrorIs(t, err, context.Canceled)
	close(release)
	assert.NoError(t, <-flightErr, "the flight's context outlives the caller's")
}

func TestTimeoutAndLifeEndTheFlight(t *testing.T) {
	var g Group[int]
	_, err := g.Do(context.Background(), nil, 10*time.Millisecond, func(fctx context.Context) (int, error) {
		<-fctx.Done()
		return 0, fctx.Err()
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)

	life, end := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := g.Do(context.Background(), life, time.Minute, func(fctx context.Context) (int, error) {
			close(started)
			<-fctx.Done()
			return 0, fctx.Err()
		})
		errc <- err
	}()
	<-started
	end()
	require.True(t, errors.Is(<-errc, context.Canceled))
}
