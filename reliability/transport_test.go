package reliability_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

const withheldMsg = "no token was sent because the connection has no transport security"

func TestTransportSecurity(t *testing.T) {
	t.Run("plaintext without the opt-in never carries a token", func(t *testing.T) {
		for _, tcp := range []bool{false, true} {
			name := "bufconn"
			if tcp {
				name = "loopback TCP"
			}
			t.Run(name, func(t *testing.T) {
				t.Cleanup(func() { goleak.VerifyNone(t) })
				r := newRig(t, rigConfig{plaintext: true, tcp: tcp})
				for _, s := range allShapes {
					err := r.callWithin(t, s, callTimeout)
					require.Error(t, err, "%s call", s.name)
					assert.Equal(t, codes.Unauthenticated, status.Code(err), "%s call", s.name)
					assert.Contains(t, err.Error(), withheldMsg, "%s call: the error says why", s.name)
					md := r.admin.LastEchoMetadata()
					require.NotNil(t, md, "%s call reached the server", s.name)
					assert.Empty(t, md.Get(testserver.DefaultHeaderKey), "%s call: a token went over plaintext", s.name)
				}
				require.Positive(t, r.tokens.Issued(), "a token was fetched, so there was one to withhold")
				assert.False(t, r.admin.MetadataRPCsSawToken())
				r.requireNoLeak(t)
			})
		}
	})

	t.Run("plaintext with WithInsecure carries the token", func(t *testing.T) {
		t.Cleanup(func() { goleak.VerifyNone(t) })
		r := newRig(t, rigConfig{plaintext: true, icptOpts: []interceptor.Option{interceptor.WithInsecure()}})
		for _, s := range allShapes {
			require.NoError(t, r.callWithin(t, s, callTimeout), "%s call", s.name)
			assert.Len(t, r.admin.LastEchoMetadata().Get(testserver.DefaultHeaderKey), 1, "%s call", s.name)
		}
		assert.False(t, r.admin.MetadataRPCsSawToken())
	})

	t.Run("local credentials on loopback carry the token", func(t *testing.T) {
		t.Cleanup(func() { goleak.VerifyNone(t) })
		r := newRig(t, rigConfig{plaintext: true, tcp: true, localCreds: true})
		for _, s := range allShapes {
			require.NoError(t, r.callWithin(t, s, callTimeout), "%s call", s.name)
		}
		assert.False(t, r.admin.MetadataRPCsSawToken())
	})

	t.Run("AuthMetadataService RPCs stay anonymous while a token is held", func(t *testing.T) {
		t.Cleanup(func() { goleak.VerifyNone(t) })
		r := newRig(t, rigConfig{})
		for _, s := range allShapes {
			require.NoError(t, r.callWithin(t, s, callTimeout), "%s call", s.name)
		}
		_, held, ok := credOK(r.auth.Credential(t.Context()))
		require.True(t, ok, "the authenticator holds a token")
		require.NotEmpty(t, held)

		// A second store on the same connection, and the RPCs called
		// directly, both through the interceptors.
		again, err := configstore.NewRemote(r.conn)
		require.NoError(t, err)
		cfg, err := again.GetClientConfig(t.Context())
		require.NoError(t, err)
		require.Equal(t, r.tokenURL, cfg.TokenEndpoint)
		direct := authmetarpc1.NewAuthMetadataServiceClient(r.conn)
		_, err = direct.GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
		require.NoError(t, err)
		_, err = direct.GetPublicClientConfig(t.Context(), &authmetapb.PublicClientAuthConfigRequest{})
		require.NoError(t, err)

		// A rejection of these RPCs is not a reason to refresh and retry.
		before := r.auth.Stats().TokenRequests
		r.admin.SetMetadataError(status.Error(codes.Unauthenticated, "no anonymous access"))
		_, err = direct.GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, before, r.auth.Stats().TokenRequests, "a rejected AuthMetadataService RPC caused a refresh")

		meta, pub := r.admin.MetadataCalls()
		require.Equal(t, [2]int64{4, 3}, [2]int64{meta, pub}, "the store's fetch, the second store's, the direct calls")
		assert.False(t, r.admin.MetadataRPCsSawToken(), "a token rode on an AuthMetadataService RPC")
		for _, md := range r.admin.MetadataRPCHeaders() {
			assert.Empty(t, md.Get(testserver.DefaultHeaderKey))
			for k, vs := range md {
				for _, v := range vs {
					assert.NotContains(t, v, held[len("Bearer "):], "metadata %q carries the token", k)
				}
			}
		}
	})
}
