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
// metadata pair and adds it to the metadata the caller set. A call that fails
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
// a bound (WithMaxReplay).
//
// A token is sent only over a connection with transport security (TLS, ALTS
// or local credentials), unless WithInsecure is given. The interceptors learn
// a connection's security on its first call that carries a token.
//
// AuthMetadataService's two RPCs are passed through untouched, so the
// configstore.Remote that feeds the authenticator can share the connection.
package interceptor
