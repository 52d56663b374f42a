// Package storeview is the config store as the assembly hands it to the
// keeper: it sets what the Flyte config says about sending the audience,
// and warns about a header key that a Flyte 2 server will not read (Flyte
// 2's identity code and its chart's ingress take the token only from the
// authorization header).
package storeview

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// View says what Wrap changes.
type View struct {
	// Header is the config's authorizationHeader.
	Header string
	// AudienceParam is the config's audienceParam.
	AudienceParam string
	// Logger receives the header warning; nil: no warning.
	Logger *slog.Logger
}

// Wrap returns store as v says: its answers carry v.AudienceParam, and a
// warning is logged, once, when it finds the server to be Flyte 2 while
// v.Header names another key than authorization. With nothing to do, it
// returns store itself.
func Wrap(store configstore.ClientConfigStore, v View) configstore.ClientConfigStore {
	warn := Problem(v.Header) != "" && v.Logger != nil
	if !warn && v.AudienceParam == "" {
		return store
	}
	return &view{ClientConfigStore: store, v: v, warn: warn}
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

type view struct {
	configstore.ClientConfigStore
	v    View
	warn bool
	once sync.Once
}

func (s *view) GetClientConfig(ctx context.Context) (*configstore.ClientConfig, error) {
	cfg, err := s.ClientConfigStore.GetClientConfig(ctx)
	if s.warn && configstore.ServiceOf(s.ClientConfigStore) == configstore.ServiceFlyte2 {
		s.once.Do(func() { s.v.Logger.Warn("grpcauth: " + Problem(s.v.Header)) })
	}
	if cfg != nil && s.v.AudienceParam != "" {
		cfg.AudienceParam = s.v.AudienceParam
	}
	return cfg, err
}
