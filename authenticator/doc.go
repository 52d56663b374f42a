// Package authenticator gets and keeps the OAuth2 access token that
// authenticates a gRPC client.
//
// An Authenticator answers two questions for the interceptors: which
// metadata to attach to a call (FetchGRPCCallAuthMetadata, a lock-free atomic
// load on the hot path) and how to get a new token after the server rejected
// one (RefreshCredentials).
//
// ClientCredentialsAuthenticator is the Go counterpart of flytekit's class of
// the same name: it requests tokens with the OAuth2 client-credentials grant
// (RFC 6749 §4.4) through golang.org/x/oauth2/clientcredentials, at the token
// endpoint that a configstore.ClientConfigStore advertises. Unlike flytekit it
// honours expires_in and refreshes in the background before expiry, lets N
// concurrent callers share one token request, bounds each request with a
// timeout, and returns typed errors (TokenError) that never carry a secret, a
// token or a raw response body.
//
// The interceptor package attaches the metadata to calls and drives the
// refresh-and-retry-once loop.
package authenticator
