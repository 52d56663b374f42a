// Package reliability holds no library code: its tests prove, end to end,
// that a client built from this module keeps working through faults and
// never leaks a secret.
//
// Every test runs the real stack over real gRPC: interceptor.UnaryClientInterceptor
// and StreamClientInterceptor on a grpc.ClientConn (bufconn or loopback TCP,
// TLS from testserver.NewCA), an authenticator.Keeper
// whose configuration comes from a configstore.Remote on that same
// connection, and the fakes of internal/testserver behind them.
//
// The tests:
//
//   - TestFaultMatrix breaks the token endpoint and AuthMetadataService in
//     every way listed in RELIABILITY.md, one subtest per fault, and checks
//     that each call fails with a status error that names the cause, that
//     no goroutine is left behind, and that the next call after the fault
//     is cleared succeeds with nothing restarted. With -matrix.out=FILE it
//     writes the observed behaviour as a markdown table.
//   - TestSoak runs 32 concurrent callers (unary and streaming) for -soak
//     (default 30s) while tokens are revoked and the token endpoint fails at
//     random, and checks that calls end in time with a status error or the
//     right answer, that token requests stay bounded, and that goroutines
//     and memory come back to where they started.
//   - TestSecretsNeverLeak runs success and failure paths with a
//     recognisable client secret and looks for it, and for every access
//     token, in logs, errors and printed values.
//   - TestTransportSecurity checks that tokens never travel over plaintext
//     without the opt-in and never ride on the anonymous
//     AuthMetadataService RPCs.
//
// The fuzz targets live next to the code they exercise: FuzzTokenResponse in
// authenticator, FuzzRemoteResponses in configstore, FuzzLoadConfig in
// flyteconfig and FuzzClip in internal/redact. `make fuzz` runs each for
// FUZZTIME.
package reliability
