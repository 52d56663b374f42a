// Package interceptor attaches OAuth2 credentials to gRPC calls and, when
// the server rejects them, refreshes the credentials and sends the call
// again, exactly once.
//
// UnaryClientInterceptor and StreamClientInterceptor take an
// authenticator.Authenticator and are installed with grpc.WithUnaryInterceptor
// and grpc.WithStreamInterceptor, or chained with other interceptors. They
// are the Go counterpart of flytekit's AuthUnaryInterceptor, and cover every
// call shape: unary, server-streaming, client-streaming and bidi.
//
// On every call the interceptor asks the authenticator for its current
// metadata pair and sends it beside the metadata the caller set. A call that fails
// with a refresh code (codes.Unauthenticated by default) makes the
// interceptor refresh the credentials and send the call again with the new
// ones; a second failure is returned as it is. If the refresh itself fails,
// the call returns a *RefreshError: status.Code still reports the call's
// code, its message names the refresh failure, and errors.As reaches the
// authenticator's typed error.
//
// A stream is retried only where nothing can be lost or duplicated: when it
// fails at creation, at Header, or at its first RecvMsg before any response
// message arrived. The messages it sent are replayed on the new stream, up to
// a bound: WithMaxReplay messages, and 64 KiB on the wire (the initial
// HTTP/2 stream window, so that a replay never waits for the server's
// answers to be read). Past either bound the stream is not retried and its
// error is returned. The wrapped stream follows gRPC's concurrency rules (one
// sender, one receiver, Header, Trailer and Context from any goroutine);
// Context never waits, and nothing waits longer than a retry's refresh or
// past the caller's context.
//
// A token is sent only over a transport with transport security (TLS, ALTS
// or local credentials), unless WithInsecure is given. The token rides on
// per-RPC credentials (a grpc.PerRPCCredentials call option, which replaces
// one the caller set on the call), so the decision is made for the
// transport each attempt actually uses: one ClientConn may mix TLS and
// plaintext subconnections. The rule itself lives in internal/transportsec,
// shared with the authenticator's PerRPCCredentials view. On an insecure
// transport the call goes out without the token; if it is then rejected,
// the error says why and no refresh is made.
//
// A call that ends because the caller's context ended while it waited for
// a token or a refresh returns the context's code (DeadlineExceeded or Canceled), not
// Unauthenticated. An authenticator with an Accepted(value string) method
// hears of each call whose token the server accepted (a unary call that
// succeeded, a stream's first message or clean end).
//
// AuthMetadataService's two RPCs are passed through untouched, so the
// configstore.Remote that feeds the authenticator can share the connection.
//
// ProxyUnaryClientInterceptor, ProxyStreamClientInterceptor and
// ProxyTransport send a second token, that of Flyte's proxyCommand, as
// proxy-authorization on every call (the metadata RPCs included) and every
// HTTP request, for deployments behind an identity-aware proxy; they
// refresh it and retry once when the proxy, not the service, refuses.
package interceptor
