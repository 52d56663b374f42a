package grpcauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// With authType Passthrough, a call carries the headers its caller set and
// nothing of grpcauth's: no token request, no metadata lookup, and a
// refusal comes back as it is, without a retry.
func TestPassthroughSendsTheCallersHeaders(t *testing.T) {
	f := newFixture(t, fixtureOptions{plaintext: true})
	tokens, admin := f.tokens, f.admin
	// The token a service's own caller sent it.
	tok, err := (&clientcredentials.Config{ClientID: testClientID, ClientSecret: testSecret, TokenURL: tokens.TokenURL()}).Token(t.Context())
	require.NoError(t, err)
	forwarded := tok.AccessToken

	c := dial(t, grpcauth.Config{Endpoint: admin.Addr(), Insecure: true, AuthType: "passthrough"})
	assert.Nil(t, c.Authenticator)
	assert.Nil(t, c.ConfigStore)
	echo := testserver.NewEchoClient(c.Conn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	withToken := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+forwarded)
	got, err := echo.Unary(withToken, "forwarded")
	require.NoError(t, err)
	assert.Equal(t, "forwarded", got)
	streamed, err := echo.Bidi(withToken, []string{"a", "b"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, streamed)
	assert.Equal(t, []string{"Bearer " + forwarded}, admin.LastEchoMetadata().Get("authorization"), "the caller's header, once")

	before := admin.EchoCalls()
	_, err = echo.Unary(ctx, "none")
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Equal(t, before+1, admin.EchoCalls(), "a refusal is not retried")
	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.Zero(t, oauth2Calls+publicCalls, "no metadata asked")
	assert.EqualValues(t, 1, tokens.Issued(), "no token requested but the caller's")
}
