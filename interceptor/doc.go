// Package interceptor attaches OAuth2 credentials to gRPC calls and, when
// the server rejects them, refreshes the credentials and sends the call
// again, exactly once.
//
// UnaryClientInterceptor and StreamClientInterceptor take an
// authenticator.Authenticator (a Keeper) and are installed with
// grpc.WithChainUnaryInterceptor and grpc.WithChainStreamInterceptor. They
// are the Go counterpart of flytekit's AuthUnaryInterceptor and cover every
// call shape: unary, server-streaming, client-streaming and bidi.
// ProxyUnaryClientInterceptor, ProxyStreamClientInterceptor and
// ProxyTransport send a second credential, the token of Flyte's
// proxyCommand, as proxy-authorization on every call (AuthMetadataService's
// included) and every HTTP request, and refresh it when the proxy, not the
// service, refuses it (IsProxyRejection).
//
// All of them, and package connectauth's interceptor, run on one retry
// engine with one set of options (Option): attach the credential, classify
// the answer, get a new credential, send once more. A call that fails with
// a refresh code (codes.Unauthenticated by default) is sent again with a
// new token; a second failure is returned as it is. If the refresh itself
// fails, the call returns a *RefreshError: status.Code still reports the
// call's code, its message names the refresh failure, and errors.As reaches
// the authenticator's typed error. A call for which no token can be got is
// not sent: it fails with codes.Unauthenticated, a message that starts
// "grpcauth: no token, the call was not sent:", and errors.As reaches the
// authenticator's typed error (only a Keeper built WithLazyStart sends
// calls without a token until a server asks for one). A call whose own
// context ended while it waited for a token returns that context's code. A
// proxy credential that cannot be got fails the call unsent with a
// *ProxyCredentialError.
//
// A stream is retried only where nothing can be lost or duplicated: when it
// fails at creation, at Header, or at its first RecvMsg before any response
// message arrived. The messages it sent are replayed on the new stream, up to
// WithMaxReplay messages and 64 KiB on the wire (the initial HTTP/2 stream
// window, so that a replay never waits for the server's answers to be
// read). Past either bound the stream is not retried and its error is
// returned. The wrapped stream follows gRPC's concurrency rules (one sender,
// one receiver, Header, Trailer and Context from any goroutine); Context
// never waits, and no lock is held across a call that may block.
//
// A token is sent only over a transport with transport security (TLS, ALTS
// or local credentials), unless WithInsecure is given, decided for the
// transport each attempt actually uses: one ClientConn may mix TLS and
// plaintext subconnections. These interceptors carry the token on a
// per-RPC credentials call option of each attempt; on an insecure
// transport the call goes out without it, and a rejection then says why.
// (grpcauth.New installs the credentials on the connection instead, which
// costs a call no allocation, and fails an attempt on an insecure
// transport before it is sent.)
//
// AuthMetadataService's two RPCs (Flyte 1's and Flyte 2's) are passed
// through untouched by the OAuth2 interceptors, so the config store that
// feeds the authenticator can share the connection.
package interceptor
