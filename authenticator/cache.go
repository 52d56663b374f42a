package authenticator

import (
	"context"

	"golang.org/x/oauth2"
)

// TokenCache keeps tokens across processes, so that an interactive login is
// not asked for again at every start. The Keeper reads it before its first
// token request and writes every token it gets; a token that is still
// valid is used as it is, an expired one hands its refresh token to the
// flow. Implementations are safe for concurrent use, also by several
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
}

// CacheKey is the key under which a Keeper keeps its tokens: the service
// endpoint and the client id, the pair a token belongs to.
func CacheKey(endpoint, clientID string) string {
	return endpoint + "\x00" + clientID
}
