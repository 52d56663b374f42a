// Package authmeta2pb holds the messages of Flyte 2's AuthMetadataService
// (flyteidl2.auth) and a hand-written gRPC client and server registration for
// it.
//
// The messages are generated from authmeta2.proto: they carry flyteidl2's
// field numbers and types, so they are wire-compatible with a Flyte 2
// backend, but they are registered under the proto package
// grpcauth.authmeta2.v1, so a binary that also links flyteidl2's generated Go
// code has no registration conflict. GetPublicClientConfigResponse has Flyte
// 1's fields plus dataplane_domain (7).
//
// The service descriptor, written by hand in service.go, uses Flyte 2's
// service name, so the method paths on the wire are
// /flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata and
// /flyteidl2.auth.AuthMetadataService/GetPublicClientConfig. Flyte 2 serves
// them with connect-go handlers, which answer the gRPC protocol too, so a
// grpc-go connection reaches them.
//
// Both RPCs are anonymous: they never need a token. configstore.NewRemote's
// stores call them through internal/authmetarpc2.
//
// Regenerate the messages with `make generate`.
package authmeta2pb
