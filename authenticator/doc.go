// Package authenticator gets and keeps the OAuth2 access token of a gRPC
// (or HTTP) client of a Flyte service.
//
// # Keeping a token vs getting one
//
// A Keeper keeps one token fresh; a Flow gets a new one. The Keeper decides
// when a token is needed (the first call, a rejection by the server, the
// proactive margin before expiry, expiry itself), makes any number of
// concurrent callers cause one Flow call, reads and writes an optional
// TokenCache, backs off from a server that rejects every fresh token, and
// hands the token out. A Flow only answers "give me a new token", given the
// resolved configstore.ClientConfig and the previous token (whose refresh
// token it may use):
//
//	type Flow interface {
//		Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error)
//	}
//
// The flows, named as flytekit names them:
//   - client credentials (RFC 6749 §4.4, through
//     golang.org/x/oauth2/clientcredentials): NewClientCredentialsAuthenticator,
//     or ClientCredentials for the Flow alone;
//   - the browser login, authorization code with PKCE (RFC 7636):
//     NewPKCEFlow;
//   - the device authorization grant (RFC 8628): NewDeviceCodeFlow,
//     NewDeviceCodeAuthenticator;
//   - a token printed by an external command: NewCommandFlow,
//     NewCommandAuthenticator.
//
// New takes any Flow; a new flow is one small file that implements Token.
// The interactive flows use the refresh token of the previous token first
// and ask the person again only when the server answers invalid_grant;
// WithCache (see package tokencache) keeps their tokens across processes.
//
// # Configuration
//
// The token endpoint, scopes, audience and header key come from the options
// when given (WithTokenURL, WithScopes, WithAudience, WithHeaderKey), else
// from the config store, read at the first token request, never at
// construction. Token requests go through one HTTP client: WithHTTPClient,
// or the one built from WithHTTPProxyURL, WithCACertFile and
// WithInsecureSkipVerify, which never follows redirects.
//
// # Views
//
// The interceptor package is the primary gRPC interface: it attaches the
// token (FetchGRPCCallAuthMetadata, a lock-free load of a precomputed pair
// on the hot path) and retries a rejected call once (RefreshRejected). A
// Keeper also serves Go's standard interfaces:
//   - TokenSource: an oauth2.TokenSource, for oauth2.NewClient and the rest
//     of the x/oauth2 ecosystem;
//   - PerRPCCredentials: credentials.PerRPCCredentials for
//     grpc.WithPerRPCCredentials;
//   - Transport and HTTPClient: an http.RoundTripper for FlyteAdmin's HTTP
//     API that refreshes and retries once on HTTP 401 when the request body
//     can be replayed.
//
// # Security
//
// A token goes only over a transport with privacy and integrity (TLS,
// ALTS) or a local one, decided per call for the transport the call uses
// (internal/transportsec holds that one rule), unless the caller opted in
// (Flyte's insecure: true). A client secret or refresh token goes only to
// an https:// token endpoint, or http:// on loopback, unless WithAllowHTTP
// is given. Errors (TokenError) never carry a secret, a token or a raw
// response body, and nothing the package logs does either.
package authenticator
