package authenticator

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
)

// TokenCache keeps tokens across processes, so that an interactive login is
// not asked for again at every start, and so that the processes of one
// user share one login. The Keeper looks at its entry at every token
// request, under the entry's lock (Update): a valid token another process
// saved is used as it is; otherwise the newest refresh token is redeemed
// and the answer saved before the lock is released, so that no two
// processes redeem the same refresh token; a refused one leaves the
// cache. A login runs outside the lock, after one more look. Implementations are safe for concurrent use, also by several
// processes, and never print a token.
type TokenCache interface {
	// Load returns the token kept under key, or nil and no error when there
	// is none (or what is there cannot be read: a cache is an optimisation,
	// never a reason to fail).
	Load(ctx context.Context, key string) (*oauth2.Token, error)
	// Save keeps tok under key, replacing what was there.
	Save(ctx context.Context, key string, tok *oauth2.Token) error
	// Delete removes what is kept under key; no token there is no error.
	Delete(ctx context.Context, key string) error
	// Update reads what is kept under key and keeps what fn returns, with
	// no change by another user of the cache (another process) in
	// between: fn gets the token kept (nil for none) and returns the one
	// to keep; nil leaves the entry as it is, a token with neither an
	// access nor a refresh token removes it. An error of fn is returned
	// and nothing changes. fn runs at most once per call: the Keeper
	// redeems a refresh token inside it, so that two processes never
	// redeem the same one. ctx bounds the wait for the other users.
	Update(ctx context.Context, key string, fn func(cur *oauth2.Token) (*oauth2.Token, error)) error
}

// CacheKey returns the key under which k keeps its tokens in its cache:
// the service endpoint, the client id, and the token endpoint, scopes and
// audience it asks with, so that a token is used only where it was got,
// and a refresh token goes only to the token endpoint that issued it (RFC
// 6749 §10.4). It resolves the client configuration, which may ask the
// config store.
func (k *Keeper) CacheKey(ctx context.Context) (string, error) {
	cfg, _, err := k.resolve(ctx)
	if err != nil {
		return "", fmt.Errorf("%s%w", errPrefix, err)
	}
	return cacheKey(k.endpoint, cfg), nil
}

// cacheKey is CacheKey for a resolved configuration.
func cacheKey(endpoint string, cfg *configstore.ClientConfig) string {
	return strings.Join([]string{endpoint, cfg.ClientID, cfg.TokenEndpoint, strings.Join(cfg.Scopes, " "), cfg.Audience, cfg.AudienceParam}, "\x00")
}
