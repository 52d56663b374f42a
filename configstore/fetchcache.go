package configstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/flyteauth/grpcauth/internal/flight"
)

// fetchCache is the caching rule every remote store follows: the first
// success is kept for the life of the store, concurrent first callers share
// one fetch that runs on its own timeout (not on any caller's context), and
// a failure is never kept, so the next caller tries again.
type fetchCache struct {
	timeout time.Duration
	logger  *slog.Logger
	what    string // what is fetched, for logs and errors: "auth metadata"

	cached atomic.Pointer[ClientConfig]
	group  flight.Group[*ClientConfig] // one fetch at a time
}

// get returns the cached configuration, or runs fetch (shared by
// concurrent callers) and caches its success. It returns when the fetch
// ends or ctx is done.
func (c *fetchCache) get(ctx context.Context, fetch func(context.Context) (*ClientConfig, error)) (*ClientConfig, error) {
	if cfg := c.cached.Load(); cfg != nil {
		return cfg.Clone(), nil
	}
	cfg, err := c.group.Do(ctx, nil, c.timeout, func(fctx context.Context) (*ClientConfig, error) {
		if cfg := c.cached.Load(); cfg != nil {
			return cfg, nil
		}
		c.logger.Debug("configstore: fetching " + c.what)
		cfg, err := fetch(fctx)
		if err != nil {
			c.logger.Warn("configstore: fetching "+c.what+" failed", "error", err)
			return nil, err
		}
		c.cached.Store(cfg)
		return cfg, nil
	})
	if err != nil {
		if errors.Is(err, flight.ErrStoppedWaiting) {
			return nil, fmt.Errorf("configstore: waiting for %s: %w", c.what, context.Cause(ctx))
		}
		return nil, err
	}
	return cfg.Clone(), nil
}
