// Package grpcauth authenticates Go clients of Flyte, Flyte 1's
// FlyteAdmin and Flyte 2, with OAuth2, from the Flyte configuration users
// already have, for every Flyte flow: client credentials, the browser login
// (PKCE), the device code, an external command, and the proxy token of
// proxyCommand for an identity-aware proxy in front of the deployment.
//
// Config is the admin section of a Flyte config file, a plain value (its
// sections PkceConfig and DeviceFlowConfig configure the interactive
// flows);
// package flyteconfig reads it the way flytekit does and says where each
// value came from. New turns a Config into an authenticated
// *grpc.ClientConn with Flyte's connection defaults (receive limit, retries
// of Unavailable, keepalive, user-agent) and returns it with its parts in a
// Client; NewClient returns the connection alone:
//
//	l, err := flyteconfig.Load(flyteconfig.Options{})
//	...
//	conn, err := grpcauth.NewClient(l.Config)
//	...
//	defer conn.Close()
//
// New is the one place that assembles the parts, for every entry point:
// package connectauth's New (Flyte 2's connect-go clients) and the
// grpcauth command use it too, so a key, a timeout, a proxy or a TLS
// setting means the same everywhere. It builds an authenticator.Keeper
// with the flow authType selects (the interactive ones shown through
// loginui.Terminal and kept in a tokencache.File), a config store that asks
// the deployment's AuthMetadataService (Flyte 2's, else Flyte 1's) only for
// what the Config does not name, the keeper of proxyCommand, and the HTTP
// client of the token requests; the interceptors of package interceptor
// attach the credentials and retry a rejected call once. Option adjusts
// any of these parts; Client.Close releases them all.
//
// Nothing this package prints shows the client secret or the credentials
// of a URL: not fmt, log/slog or encoding/json.
//
// The command-line tool in cmd/grpcauth uses it: `grpcauth demo` runs the
// whole stack against in-process fakes, `grpcauth token` prints a token for
// a real deployment, `grpcauth whoami` shows whom it names (and asks the
// deployment), `grpcauth doctor` checks each hop to the deployment,
// `grpcauth config` shows the resolved configuration, and `grpcauth login`
// / `logout` keep or drop the token of an interactive flow.
package grpcauth
