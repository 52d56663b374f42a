// Package benchmarks measures what authentication costs a gRPC call made
// through this module, next to what it costs without it and with the
// generic Go stack.
//
// It holds only tests and benchmarks, all over the fakes of
// internal/testserver: a gRPC echo service on bufconn with TLS, protected
// by an OAuth2 token endpoint. The benchmarks compare four ways of making
// the same unary and server-streaming calls:
//
//   - bare: no authentication, against an echo service that wants none;
//   - floor: a constant "authorization: Bearer …" header added with
//     metadata.AppendToOutgoingContext, the least any interceptor can cost;
//   - ours: interceptor.UnaryClientInterceptor and StreamClientInterceptor
//     over an authenticator.Keeper that reads its
//     configuration with a configstore.Remote on the same connection;
//   - generic: grpc-go's credentials/oauth.TokenSource over
//     oauth2.ReuseTokenSource of a clientcredentials.Config, installed with
//     grpc.WithPerRPCCredentials: what a Go user would otherwise write.
//
// BenchmarkUnary and BenchmarkServerStream run each variant on its own,
// serial and parallel; BenchmarkInterleaved runs the four in turn, call by
// call, so that load from elsewhere falls on all alike; BenchmarkHotPath
// measures the interceptors alone, without an RPC.
//
// The scenario tests count what matters when tokens go bad: token requests
// in a refresh storm, failed calls and latency while tokens expire under
// load, and round trips before the first call succeeds. The cheap ones run
// with the normal suite; the long ones need -scenarios.
//
// BENCHMARKS.md at the module root says how to run them and what they
// showed.
package benchmarks
