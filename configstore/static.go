package configstore

import "context"

// static is the store of NewStatic.
type static struct {
	cfg *ClientConfig
}

// NewStatic returns a store that returns a copy of cfg on every call, for
// deployments whose settings are known up front. It does no I/O.
func NewStatic(cfg ClientConfig) ClientConfigStore {
	return opaque{&static{cfg: cfg.Clone()}}
}

// get returns a copy of the configuration given to NewStatic. It
// fails only if ctx is already done.
func (s *static) get(ctx context.Context) (*ClientConfig, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.cfg.Clone(), nil
}
