// Package grpcauth connects Go gRPC clients to FlyteAdmin, or to any server
// of flyteidl's AuthMetadataService, with OAuth2, using the Flyte
// configuration users already have, for every Flyte flow: client
// credentials, the browser login (PKCE), the device code, an external
// command, and a proxy token (proxyCommand).
//
// Config is the admin section of a Flyte config file. LoadConfig reads it
// the way flytekit does: the file named by FLYTECTL_CONFIG, else
// ~/.flyte/config.yaml, overridden by the FLYTE_* environment variables;
// fields assigned afterwards win over both. It remembers where each value
// came from (Config.Settings), warns about unknown keys (Config.Warnings),
// and never prints a secret or the credentials of a URL, under fmt, slog or
// encoding/json.
//
// NewClient turns a Config into a *grpc.ClientConn with the auth
// interceptors installed and Flyte's connection defaults (receive limit,
// retries of Unavailable, keepalive, user-agent):
//
//	cfg, err := grpcauth.LoadConfig()
//	...
//	conn, err := grpcauth.NewClient(cfg)
//	...
//	defer conn.Close()
//
// Underneath, it wires the other packages together: a configstore.Remote
// that asks AuthMetadataService on the same connection where the token
// endpoint is (unless the Config names everything), an authenticator.Keeper
// with the flow authType selects, which gets and refreshes the tokens (the
// interactive flows keep them in a tokencache.File), and the interceptor
// package's unary and stream interceptors, which attach them and retry a
// rejected call once. New does the same and also returns the Keeper (for
// Stats, its standard views and Close). Callers who build their own
// connection can use Config.TransportCredentials, Config.DialOptions and
// Config.NewAuthenticator with grpc.NewClient, the interceptors and a
// configstore.LateConn. Flyte 2's connect-go clients are served by package
// connectauth.
//
// The command-line tool in cmd/grpcauth uses this package: `grpcauth demo`
// runs it against in-process fakes, `grpcauth token` prints a token for a
// real deployment, `grpcauth config` shows the resolved configuration, and
// `grpcauth login` / `logout` keep or drop the token of an interactive flow.
package grpcauth
