// Package testserver holds real, in-process fakes of the two servers a
// grpcauth client talks to, shared by the tests, examples and benchmarks of
// every package and by the `grpcauth demo` command.
//
// The pieces:
//
//   - [CA] is a throwaway certificate authority generated at start-up. It
//     signs leaf certificates for localhost, bufnet, 127.0.0.1 and ::1, so
//     both fakes can serve TLS that a client trusts through [CA.CertPool],
//     [CA.ClientTLSConfig] or the file written by [CA.WriteCertFile].
//   - [TokenServer] is an OAuth2 token endpoint (RFC 6749 §4.4, client
//     credentials) on an httptest server. It authenticates clients the way
//     real servers do (HTTP Basic with form-url-encoded id and secret, or
//     client_secret_post), issues random opaque tokens and remembers them,
//     so it can tell whether a token is valid, revoked or expired. Latency
//     and [Fault] knobs simulate slow or broken servers; counters and
//     [TokenServer.LastRequest] let tests check what went over the wire.
//   - [AdminServer] is a gRPC server standing in for FlyteAdmin. It serves
//     the anonymous AuthMetadataService (which tells clients where the token
//     endpoint is) and a protected echo service with unary, server-streaming,
//     client-streaming and bidirectional methods. It listens on bufconn (the
//     default) or loopback TCP, with or without TLS.
//
// The two fit together through [TokenValidator]: *TokenServer implements it,
// and an AdminServer built with [WithValidator] accepts an echo call only
// when it carries "Bearer <token>" for a token the TokenServer issued and
// still considers valid:
//
//	tokens, err := testserver.NewTokenServer(testserver.WithClient("id", "secret"))
//	...
//	admin, err := testserver.NewAdminServer(
//		testserver.WithValidator(tokens),
//		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}),
//	)
//	...
//	conn, err := grpc.NewClient(admin.Addr(), admin.DialOptions()...)
//	...
//	reply, err := testserver.NewEchoClient(conn).Unary(ctx, "hi")
//
// Nothing here depends on the testing package: constructors return errors,
// every knob can be turned while the servers serve, and Close releases every
// goroutine, so tests can check for leaks.
package testserver
