package authenticator

import (
	"context"
	"time"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
)

// Flow gets a new token: it is what differs between client credentials,
// PKCE, the device code and an external command. The Keeper decides when
// to ask (first use, rejection, expiry, the proactive margin), makes N
// concurrent callers cause one call of Token, caches the result and hands
// it to the interceptors and the standard views; a Flow does none of that.
//
// Token is given:
//   - ctx, bounded by the token timeout (or the flow's own, see
//     TimeoutFlow) and carrying the Keeper's HTTP client under
//     oauth2.HTTPClient, so that x/oauth2 uses it;
//   - cfg, the resolved client configuration: the config store's answer
//     with the Keeper's options (token URL, scopes, audience) applied, the
//     token endpoint already checked for transport security;
//   - prev, the last token the Keeper held (from memory or its cache), or
//     nil: a flow with refresh tokens uses prev.RefreshToken first.
//
// Token returns a token whose AccessToken is set. Its Expiry, or an
// "expires_in" extra, gives the lifetime; a token with neither is used until
// the server rejects it. Errors should be a *TokenError where an OAuth2
// server answered, and never carry a secret or a token.
type Flow interface {
	Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error)
}

// FlowFunc adapts a function to a Flow.
type FlowFunc func(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error)

// Token calls f.
func (f FlowFunc) Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error) {
	return f(ctx, cfg, prev)
}

// TimeoutFlow is a Flow that needs longer than the token timeout, such as
// one that waits for a person (a browser login, a device code). The Keeper
// bounds its Token calls by FlowTimeout instead.
type TimeoutFlow interface {
	Flow
	FlowTimeout() time.Duration
}

// ClientIDFlow is a Flow that authenticates as a client id of its own,
// which then wins over the config store's public client id in cfg and in
// the cache key.
type ClientIDFlow interface {
	Flow
	FlowClientID() string
}
