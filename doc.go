// Package grpcauth connects Go gRPC clients to FlyteAdmin, or to any server
// of flyteidl's AuthMetadataService, with OAuth2 client credentials, using
// the Flyte configuration users already have.
//
// Config is the admin section of a Flyte config file. LoadConfig reads it
// the way flytekit does: the file named by FLYTECTL_CONFIG, else
// ~/.flyte/config.yaml, overridden by the FLYTE_* environment variables;
// fields assigned afterwards win over both. It remembers where each value
// came from (Config.Settings), and never prints the client secret.
//
// NewClient turns a Config into a *grpc.ClientConn with the auth
// interceptors installed:
//
//	cfg, err := grpcauth.LoadConfig()
//	...
//	conn, err := grpcauth.NewClient(cfg)
//	...
//	defer conn.Close()
//
// Underneath, it wires the other packages together: a configstore.Remote
// that asks AuthMetadataService on the same connection where the token
// endpoint is, an authenticator.Keeper that gets
// and refreshes the tokens, and the interceptor package's unary and stream
// interceptors, which attach them and retry a rejected call once. New does
// the same and also returns the authenticator, for its Stats. Callers who
// build their own connection can use Config.TransportCredentials and
// Config.NewAuthenticator with grpc.NewClient and the interceptors.
//
// The command-line tool in cmd/grpcauth uses this package: `grpcauth demo`
// runs it against in-process fakes, `grpcauth token` prints a token for a
// real deployment and `grpcauth config` shows the resolved configuration.
package grpcauth
