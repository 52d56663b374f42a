// Package authenticator gets and keeps the OAuth2 access token of a gRPC
// (or HTTP) client of a Flyte service. It holds no terminal, browser or
// HTML code: what a person sees of a login is a Prompter's (package
// loginui has a terminal's).
//
// # Keeping a token vs getting one
//
// A Keeper keeps one token fresh; a Flow gets a new one. The Keeper decides
// when a token is needed (the first call, a rejection by the server, the
// proactive margin before expiry, expiry itself), makes any number of
// concurrent callers cause one Flow call, reads and writes an optional
// TokenCache, backs off from a server that rejects every fresh token
// (ErrRejectedBackoff), counts what it does (Stats), and hands the token
// out. A Flow only answers "give me a new token", given the resolved
// configstore.ClientConfig and the previous token (whose refresh token it
// may use).
//
// The flows, named as flytekit names them:
//   - client credentials (RFC 6749 §4.4, through
//     golang.org/x/oauth2/clientcredentials): ClientCredentials, with a
//     SecretSource (SecretFromValue, SecretFromFile, SecretFromEnv), or
//     NewClientCredentialsAuthenticator for a Keeper in one call;
//   - the browser login, authorization code with PKCE (RFC 7636):
//     NewPKCEFlow with a PKCEConfig;
//   - the device authorization grant (RFC 8628): NewDeviceFlow with a
//     DeviceConfig;
//   - a token printed by an external command (Flyte's command and
//     proxyCommand): NewCommandFlow.
//
// New takes any Flow; a new flow is one small type that implements Token.
// The interactive flows use the refresh token of the previous token first
// and ask the person again only when the server answers invalid_grant;
// WithCache (see package tokencache) keeps their tokens across processes.
// An authorization server's refusal of a login is an *AuthorizationError,
// a failed token request a *TokenError, a failed command a *CommandError.
//
// # Configuration
//
// The token endpoint, scopes, audience and header key come from the options
// when given (WithTokenURL, WithScopes, WithAudience, WithHeaderKey), else
// from the config store, read at the first token request, never at
// construction. Token requests go through one HTTP client (WithHTTPClient;
// grpcauth.New builds it from the Flyte config), which by default follows
// no redirects. Option configures a Keeper.
//
// # The contract and the views
//
// Authenticator is the contract between a keeper and what sends calls:
// Credential (a lock-free load of a precomputed header pair while the token
// is valid), Rejected (a new token unless the refused one was replaced
// already) and Accepted. The interceptor and connectauth packages are the
// primary gRPC and connect-go interfaces. A Keeper also serves Go's
// standard interfaces:
//   - TokenSource: an oauth2.TokenSource, for oauth2.NewClient and the rest
//     of the x/oauth2 ecosystem;
//   - PerRPCCredentials: credentials.PerRPCCredentials for
//     grpc.WithPerRPCCredentials;
//   - Transport: an http.RoundTripper for FlyteAdmin's HTTP API that
//     refreshes and retries once on HTTP 401 when the request body can be
//     replayed, and never carries the token to a redirect of another scheme
//     or host.
//
// # Security
//
// A token goes only over a transport with privacy and integrity (TLS,
// ALTS) or a local one, decided per call for the transport the call uses,
// unless the caller opted in (Flyte's insecure: true). A client secret or
// refresh token goes only to an https:// token endpoint, or http:// on
// loopback, unless WithInsecure is given (ErrInsecureEndpoint). Errors
// never carry a secret, a token or a raw response body, and nothing the
// package logs does either.
package authenticator
