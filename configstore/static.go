package configstore

import "context"

// Static is a ClientConfigStore that always returns the same configuration.
// It does no I/O and is safe for concurrent use.
type Static struct {
	cfg *ClientConfig
}

// NewStatic returns a store that returns a copy of cfg on every call.
func NewStatic(cfg ClientConfig) *Static {
	return &Static{cfg: cfg.Clone()}
}

// GetClientConfig returns a copy of the configuration given to NewStatic. It
// fails only if ctx is already done.
func (s *Static) GetClientConfig(ctx context.Context) (*ClientConfig, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.cfg.Clone(), nil
}
