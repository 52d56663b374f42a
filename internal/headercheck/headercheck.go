// Package headercheck warns about a header key that a Flyte 2 server will
// not read: Flyte 2's identity code and its chart's ingress take the token
// only from the authorization header.
package headercheck

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// Wrap returns store, wrapped to log a warning, once, when it finds the
// server to be Flyte 2 while header (the config's authorizationHeader)
// names another key than authorization. Without such a header or a logger,
// it returns store itself.
func Wrap(store configstore.ClientConfigStore, header string, logger *slog.Logger) configstore.ClientConfigStore {
	header = strings.TrimSpace(header)
	if header == "" || strings.EqualFold(header, "authorization") || logger == nil {
		return store
	}
	return &check{ClientConfigStore: store, header: header, logger: logger}
}

// Problem says what is wrong with header against a Flyte 2 server, "" if
// nothing.
func Problem(header string) string {
	header = strings.TrimSpace(header)
	if header == "" || strings.EqualFold(header, "authorization") {
		return ""
	}
	return "the server is Flyte 2, which reads the token only from the authorization header, but authorizationHeader is " +
		redact.Clip(header, 64) + ": calls will be refused"
}

type check struct {
	configstore.ClientConfigStore
	header string
	logger *slog.Logger
	once   sync.Once
}

func (c *check) GetClientConfig(ctx context.Context) (*configstore.ClientConfig, error) {
	cfg, err := c.ClientConfigStore.GetClientConfig(ctx)
	if configstore.ServiceOf(c.ClientConfigStore) == configstore.ServiceFlyte2 {
		c.once.Do(func() { c.logger.Warn("grpcauth: " + Problem(c.header)) })
	}
	return cfg, err
}
