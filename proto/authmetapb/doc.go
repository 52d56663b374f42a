// Package authmetapb holds the messages of FlyteAdmin's AuthMetadataService
// and a hand-written gRPC client and server registration for it.
//
// The messages are generated from authmeta.proto: they carry flyteidl's field
// numbers and types, so they are wire-compatible with FlyteAdmin, but they are
// registered under the proto package grpcauth.authmeta.v1, so a binary that
// also links flyteidl's generated Go code has no registration conflict.
//
// The service descriptor, written by hand in service.go, uses FlyteAdmin's
// service name, so the method paths on the wire are
// /flyteidl.service.AuthMetadataService/GetOAuth2Metadata and
// /flyteidl.service.AuthMetadataService/GetPublicClientConfig.
//
// Both RPCs are anonymous: they never need a token. The configstore package's
// Remote calls them; internal/testserver serves them.
//
// Regenerate the messages with `make generate`.
package authmetapb
