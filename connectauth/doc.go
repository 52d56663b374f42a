// Package connectauth authenticates connect-go clients (connectrpc.com/connect)
// of Flyte 2 and other OAuth2-protected services with the same
// authenticators, and the same guarantees, as package interceptor gives
// grpc-go clients. It lives apart so that grpc-only programs never import
// connect-go.
//
// NewInterceptor returns a connect.Interceptor. For every unary call and
// every client, server or bidi stream it attaches the authenticator's token
// as an HTTP header ("authorization: Bearer <token>" by default); when the
// server answers connect.CodeUnauthenticated (before any response message,
// for a stream) it refreshes the token, through
// authenticator.RejectionRefresher when the authenticator has it, and sends
// the call again, exactly once, replaying what a stream had sent within
// bounds of count and bytes. It works alike over the Connect, gRPC and
// gRPC-Web protocols.
//
// A token goes only over HTTPS, or plain HTTP to a loopback host, unless
// WithInsecure is given (Flyte's insecure: true). Otherwise the call goes
// out without it, and a rejection says why.
//
// New builds everything from a Flyte config (grpcauth.Config): an HTTP/2
// *http.Client, the base URL and the connect.ClientOption that installs the
// interceptor, so that a generated client is authenticated in one line:
//
//	c, err := connectauth.New(cfg)
//	...
//	defer c.Close()
//	runs := workflowconnect.NewRunServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
//
// The token endpoint comes from the config (tokenUrl) or from the server:
// Flyte 2's flyteidl2.auth.AuthMetadataService, Flyte 1's, or either
// (configstore.AutoRemote, the default), or an RFC 8414 discovery document
// (WithConfigStore and configstore.NewDiscovery).
package connectauth
