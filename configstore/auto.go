package configstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/redact"
)

// Service names which AuthMetadataService a store asks.
type Service int32

const (
	// ServiceAuto asks Flyte 2's service first and falls back to Flyte 1's
	// when the server does not serve it (AutoRemote).
	ServiceAuto Service = iota
	// ServiceFlyte1 is FlyteAdmin's flyteidl.service.AuthMetadataService
	// (Remote).
	ServiceFlyte1
	// ServiceFlyte2 is Flyte 2's flyteidl2.auth.AuthMetadataService
	// (Flyte2Remote).
	ServiceFlyte2
)

// String returns "auto", "flyte1" or "flyte2", the spellings ParseService
// reads.
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

// ParseService reads a service choice, case-insensitively: "" or "auto";
// "flyte1", "flyteidl" or "flyteadmin"; "flyte2" or "flyteidl2".
func ParseService(s string) (Service, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ServiceAuto, nil
	case "flyte1", "flyteidl", "flyteadmin":
		return ServiceFlyte1, nil
	case "flyte2", "flyteidl2":
		return ServiceFlyte2, nil
	}
	return ServiceAuto, fmt.Errorf("configstore: unknown auth metadata service %q: want auto, flyte1 or flyte2", redact.Clip(s, 64))
}

// NewServiceRemote returns the store for svc on cc: an AutoRemote, a Remote
// (Flyte 1) or a Flyte2Remote. It does no I/O.
func NewServiceRemote(cc grpc.ClientConnInterface, svc Service, opts ...RemoteOption) (ClientConfigStore, error) {
	switch svc {
	case ServiceAuto:
		return NewAutoRemote(cc, opts...)
	case ServiceFlyte1:
		return NewRemote(cc, opts...)
	case ServiceFlyte2:
		return NewFlyte2Remote(cc, opts...)
	}
	return nil, fmt.Errorf("configstore: NewServiceRemote: unknown service %v", svc)
}

// AutoRemote is a ClientConfigStore for a server that may be Flyte 1 or
// Flyte 2. Its first fetch asks Flyte 2's flyteidl2.auth.AuthMetadataService;
// when the server answers Unimplemented for it (it does not serve it), it
// asks FlyteAdmin's flyteidl.service.AuthMetadataService instead. It
// remembers which service the server serves as soon as the server has said
// so, and asks only that one from then on, even if that fetch failed and is
// tried again. Caching, single flight and never caching a failure are as for
// Remote.
//
// AutoRemote is safe for concurrent use.
type AutoRemote struct {
	v1    *Remote
	v2    *Flyte2Remote
	found atomic.Int32 // a Service; ServiceAuto until the server said
	cache fetchCache
}

// NewAutoRemote returns a store that finds out which AuthMetadataService cc
// serves. It takes Remote's options. It does no I/O; the first
// GetClientConfig does.
func NewAutoRemote(cc grpc.ClientConnInterface, opts ...RemoteOption) (*AutoRemote, error) {
	if cc == nil {
		return nil, errors.New("configstore: NewAutoRemote: connection is nil")
	}
	v1, err := NewRemote(cc, opts...)
	if err != nil {
		return nil, err
	}
	v2, err := NewFlyte2Remote(cc, opts...)
	if err != nil {
		return nil, err
	}
	return &AutoRemote{
		v1:    v1,
		v2:    v2,
		cache: fetchCache{timeout: v1.timeout, logger: v1.logger, what: "auth metadata"},
	}, nil
}

// Service reports which service the server was found to serve, or
// ServiceAuto while that is not known yet.
func (a *AutoRemote) Service() Service { return Service(a.found.Load()) }

// String describes the store without walking its internals.
func (a *AutoRemote) String() string {
	return "configstore.AutoRemote{" + a.Service().String() + ", " + a.cache.state() + "}"
}

// GoString is String, for %#v.
func (a *AutoRemote) GoString() string { return a.String() }

// GetClientConfig returns the cached configuration, fetching it first if no
// fetch has succeeded yet, from the service the server serves. It returns
// when the fetch ends or ctx is done, whichever comes first. Errors keep the
// gRPC status code of the RPC that failed.
func (a *AutoRemote) GetClientConfig(ctx context.Context) (*ClientConfig, error) {
	return a.cache.get(ctx, a.fetch)
}

func (a *AutoRemote) fetch(ctx context.Context) (*ClientConfig, error) {
	switch a.Service() {
	case ServiceFlyte1:
		return a.v1.fetch(ctx)
	case ServiceFlyte2:
		cfg, _, err := a.v2.fetch(ctx)
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
	a.found.Store(int32(ServiceFlyte1))
	a.cache.logger.Debug("configstore: the server does not serve Flyte 2's AuthMetadataService; asking Flyte 1's")
	cfg, err = a.v1.fetch(ctx)
	if status.Code(err) == codes.Unimplemented {
		a.found.Store(int32(ServiceAuto))
		return nil, fmt.Errorf("configstore: the server serves neither flyteidl2.auth.AuthMetadataService nor flyteidl.service.AuthMetadataService: %w", err)
	}
	return cfg, err
}
