package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// AuthMetadataService's RPCs stay anonymous on New's connection even once
// a token is held: the connection's per-RPC credentials leave them alone.
func TestMetadataRPCsStayAnonymousWithATokenHeld(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := dial(t, f.config())
	_, err := testserver.NewEchoClient(c.Conn).Unary(callCtx(t), "x")
	require.NoError(t, err)
	require.Positive(t, c.Authenticator.Stats().TokenRequests, "a token is held")

	meta := authmetarpc1.NewAuthMetadataServiceClient(c.Conn)
	_, err = meta.GetPublicClientConfig(callCtx(t), &authmetapb.PublicClientAuthConfigRequest{})
	require.NoError(t, err)
	_, err = meta.GetOAuth2Metadata(callCtx(t), &authmetapb.OAuth2MetadataRequest{})
	require.NoError(t, err)
	assert.False(t, f.admin.MetadataRPCsSawToken(), "a metadata RPC carried the token")
}
