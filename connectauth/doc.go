// Package connectauth authenticates connect-go clients
// (connectrpc.com/connect) of Flyte 2 and other OAuth2-protected services
// with the same keepers, the same retry engine and the same options
// (package interceptor's) as the gRPC interceptors. It lives apart so that
// grpc-only programs never import connect-go.
//
// NewInterceptor returns an *Interceptor, a connect.Interceptor. For every
// unary call and every client, server or bidi stream it attaches the
// token as an HTTP header ("authorization: Bearer <token>" by default);
// when the server answers connect.CodeUnauthenticated before any response
// message, it gets a new token and sends the call again, exactly once,
// replaying what a stream had sent within the same bounds as the gRPC
// interceptors (64 messages, 64 KiB). A refresh that fails returns an
// *interceptor.RefreshError inside the *connect.Error. It works alike over
// the Connect, gRPC and gRPC-Web protocols. A token goes only over HTTPS,
// or plain HTTP to a loopback host, unless interceptor.WithInsecure is
// given (Flyte's insecure: true); otherwise the call goes out without it,
// and a rejection says why.
//
// New builds a *Client from a Flyte config through grpcauth.New's
// assembly (the same keys, flows, proxy and options): an
// *http.Client (HTTP/2 and HTTP/1.1 over TLS, h2c without) that carries the proxy token of proxyCommand, the base URL
// and the connect.ClientOption that installs the interceptor, so that a
// generated client is authenticated in one line:
//
//	c, err := connectauth.New(l.Config)
//	...
//	defer c.Close()
//	runs := workflowconnect.NewRunServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
//
// The token endpoint comes from the config (tokenUrl) or from the
// deployment's AuthMetadataService, asked only for what the config does
// not name: Flyte 2's over the Connect protocol with the client's own HTTP
// client (so an ingress that speaks only HTTP/1.1 is no obstacle), and,
// when the server does not serve that, Flyte 1's over a grpc-go
// connection (FlyteAdmin speaks gRPC, over HTTP/2). grpcauth.WithConfigStore
// with a configstore.NewDiscovery reads an RFC 8414 document instead.
package connectauth
