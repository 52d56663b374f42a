package authenticator

import "context"

// Authenticator is the contract between a token keeper and the code that
// sends calls: the gRPC interceptors, package connectauth and the HTTP
// transports. A Keeper implements it; a test or a program with a token of
// its own may too. Implementations are safe for concurrent use.
type Authenticator interface {
	// Credential returns the header key and value ("Bearer <token>") to
	// attach to a call. When no credential is held yet it may get one
	// first, bounded by ctx. An error means none is at hand, and the
	// interceptors end the call unsent with that error; only a Keeper
	// built WithLazyStart, before any server asked for a token, has its
	// calls sent without one.
	Credential(ctx context.Context) (key, value string, err error)
	// Rejected reports that the server rejected a call that carried value
	// ("" for a call that carried none), and gets a new credential unless
	// value has been replaced already (then it returns nil at once). It
	// returns when the new credential is at hand or ctx is done.
	Rejected(ctx context.Context, value string) error
	// Accepted reports that the server accepted a call that carried
	// value. It must be cheap: it is called once per successful call.
	Accepted(value string)
}
