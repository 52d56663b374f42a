package authenticator_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
)

// blockingCache holds the second Save until release is closed: the flight
// that got that token is then still running after the token became the
// current one.
type blockingCache struct {
	saves   chan struct{}
	release chan struct{}
	n       int
}

func (c *blockingCache) Load(context.Context, string) (*oauth2.Token, error) { return nil, nil }
func (c *blockingCache) Delete(context.Context, string) error                { return nil }
func (c *blockingCache) Save(context.Context, string, *oauth2.Token) error {
	c.n++ // one flight at a time
	if c.n == 2 {
		c.saves <- struct{}{}
		<-c.release
	}
	return nil
}

// Update gives fn no token and saves what it returns, as Save does.
func (c *blockingCache) Update(ctx context.Context, key string, fn func(*oauth2.Token) (*oauth2.Token, error)) error {
	next, err := fn(nil)
	if err != nil || next == nil {
		return err
	}
	return c.Save(ctx, key, next)
}

// A call rejected with a token that a flight still running has just made
// current must get a new token, not that flight's answer: the rejected
// token itself.
func TestRejectedTokenIsNotHandedBackByTheFlightThatMadeIt(t *testing.T) {
	ts := newDefaultTokenServer(t)
	cache := &blockingCache{saves: make(chan struct{}), release: make(chan struct{})}
	k := newAuth(t, staticFor(ts), authenticator.WithCache(cache))
	defer k.Close()
	require.NoError(t, k.RefreshCredentials(t.Context()))

	refreshed := make(chan error, 1)
	go func() { refreshed <- k.RefreshCredentials(t.Context()) }()
	<-cache.saves // v2 is current; its flight is saving it
	_, v2, err := k.Credential(t.Context())
	require.NoError(t, err)

	joined := make(chan struct{})
	rejected := make(chan error, 1)
	go func() { rejected <- k.Rejected(probe(t.Context(), func() { close(joined) }), v2) }()
	<-joined // Rejected waits on the flight that made v2
	close(cache.release)
	require.NoError(t, <-refreshed)
	require.NoError(t, <-rejected)
	_, now, _ := k.Credential(t.Context())
	assert.NotEqual(t, v2, now, "the rejected token is still the current one")
}
