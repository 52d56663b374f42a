package configstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Service names which AuthMetadataService a store asks.
type Service int32

const (
	// ServiceAuto asks Flyte 2's service first and falls back to Flyte 1's
	// when the server does not serve it, remembering which it found.
	ServiceAuto Service = iota
	// ServiceFlyte1 is FlyteAdmin's flyteidl.service.AuthMetadataService.
	ServiceFlyte1
	// ServiceFlyte2 is Flyte 2's flyteidl2.auth.AuthMetadataService.
	ServiceFlyte2
)

// String returns "auto", "flyte1" or "flyte2".
func (s Service) String() string {
	switch s {
	case ServiceAuto:
		return "auto"
	case ServiceFlyte1:
		return "flyte1"
	case ServiceFlyte2:
		return "flyte2"
	}
	return fmt.Sprintf("Service(%d)", int32(s))
}

// autoRemote is the store of a server that may be Flyte 1 or Flyte 2. Its
// first fetch asks Flyte 2's service; when the server answers Unimplemented
// for it (it does not serve it), it asks Flyte 1's instead. It remembers
// which service the server serves as soon as the server has said so, and
// asks only that one from then on, even if that fetch failed and is tried
// again.
type autoRemote struct {
	v1    *remote
	v2    *flyte2Remote
	found atomic.Int32 // a Service; ServiceAuto until the server said
	cache fetchCache
}

func newAutoRemote(cc grpc.ClientConnInterface, o *options) *autoRemote {
	return &autoRemote{
		v1:    newRemote(cc, o),
		v2:    newFlyte2Remote(cc, o),
		cache: fetchCache{timeout: o.timeout, logger: o.logger, what: "auth metadata"},
	}
}

// Service reports which service the server was found to serve, or
// ServiceAuto while that is not known yet.
func (a *autoRemote) service() Service { return Service(a.found.Load()) }

// get returns the cached configuration, fetching it first if no
// fetch has succeeded yet, from the service the server serves. It returns
// when the fetch ends or ctx is done, whichever comes first. Errors keep the
// gRPC status code of the RPC that failed.
func (a *autoRemote) get(ctx context.Context) (*ClientConfig, error) {
	return a.cache.get(ctx, a.fetch)
}

// fetch asks the service the server was found to serve, or finds it out.
// A generation is remembered only once it answered; a remembered one that
// answers Unimplemented (a front that routed it elsewhere during a
// rollout) is forgotten, so the next fetch probes again.
func (a *autoRemote) fetch(ctx context.Context) (*ClientConfig, error) {
	switch a.service() {
	case ServiceFlyte1:
		cfg, err := a.v1.fetch(ctx)
		if status.Code(err) == codes.Unimplemented {
			a.found.Store(int32(ServiceAuto))
		}
		return cfg, err
	case ServiceFlyte2:
		cfg, served, err := a.v2.fetch(ctx)
		if !served {
			a.found.Store(int32(ServiceAuto))
		}
		return cfg, err
	}
	cfg, served, err := a.v2.fetch(ctx)
	if served {
		a.found.Store(int32(ServiceFlyte2))
		a.cache.logger.Debug("configstore: the server serves Flyte 2's AuthMetadataService")
		return cfg, err
	}
	if !errors.Is(err, errNotServed) {
		return nil, err // the server did not say: ask again next time
	}
	a.cache.logger.Debug("configstore: the server does not serve Flyte 2's AuthMetadataService; asking Flyte 1's")
	cfg, err = a.v1.fetch(ctx)
	switch {
	case err == nil:
		a.found.Store(int32(ServiceFlyte1))
	case status.Code(err) == codes.Unimplemented:
		return nil, fmt.Errorf("configstore: the server serves neither flyteidl2.auth.AuthMetadataService nor flyteidl.service.AuthMetadataService: %w", err)
	}
	return cfg, err
}

// ServiceOf says which AuthMetadataService a store of NewRemote found the
// server to serve: ServiceFlyte1 or ServiceFlyte2 once the server has
// answered (even if that answer was an error, such as
// ErrNoIdentityProvider), the service itself for a store pinned with
// WithService, and ServiceAuto before that or for any other store.
func ServiceOf(s ClientConfigStore) Service {
	o, ok := s.(opaque)
	if !ok {
		return ServiceAuto
	}
	switch r := o.s.(type) {
	case *autoRemote:
		return r.service()
	case *remote:
		return ServiceFlyte1
	case *flyte2Remote:
		return ServiceFlyte2
	}
	return ServiceAuto
}
