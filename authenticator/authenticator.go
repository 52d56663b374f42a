package authenticator

import "context"

// Authenticator provides the credentials of a gRPC client. Implementations
// are safe for concurrent use.
type Authenticator interface {
	// FetchGRPCCallAuthMetadata returns the metadata key and value to attach
	// to a call. ok is false while no credentials are held; the call then
	// goes out without them.
	FetchGRPCCallAuthMetadata(ctx context.Context) (key, value string, ok bool)
	// RefreshCredentials gets new credentials, or joins a refresh already
	// in flight. It returns when the refresh ends or ctx is done.
	RefreshCredentials(ctx context.Context) error
}

// RejectionRefresher is implemented by authenticators that can tell a
// rejected credential from the current one. The interceptors use it, when
// available, instead of RefreshCredentials: a late rejection of a value that
// has already been replaced then costs no token request.
type RejectionRefresher interface {
	// RefreshRejected gets new credentials if value (as returned by
	// FetchGRPCCallAuthMetadata, or "" if the call carried none) is still
	// the current one, and returns at once otherwise.
	RefreshRejected(ctx context.Context, value string) error
}
