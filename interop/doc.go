// Package interop holds the interoperability tests of grpcauth: the whole
// stack (config file, NewClient, interceptors, authenticator, config store)
// against ORY Hydra, a real OAuth2 authorization server.
//
// It is a module of its own, so that Hydra, which the tests build from the
// Go module proxy and run as a separate process, never enters the
// library's go.mod. The package has no code besides its tests; run them
// with `make interop` from the repository root, which builds Hydra into
// interop/.bin once and reuses it.
//
// The tests start one Hydra per run (serve all --dev, in-memory database,
// free loopback ports) and stop it at the end, leaving no process behind.
// Each test registers its own OAuth2 clients through Hydra's admin API and
// runs an internal/testserver AdminServer whose AuthMetadataService
// advertises Hydra's token endpoint and whose echo service accepts a call
// only when Hydra's introspection endpoint says its token is active.
package interop
