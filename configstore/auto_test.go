package configstore_test

import (
	"errors"
	"net"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

const (
	v1Meta = "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata"
	v1Pub  = "/flyteidl.service.AuthMetadataService/GetPublicClientConfig"
	v2Meta = "/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata"
	v2Pub  = "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig"
)

func TestAutoRemoteFindsFlyte2(t *testing.T) {
	_, cc, log := newFlyte2Server(t, false, testserver.WithFlyte2Metadata(flyte2Metadata), testserver.WithFlyte2PublicConfig(flyte2Public))
	a, err := configstore.NewRemote(cc)
	require.NoError(t, err)
	assert.Equal(t, configstore.ServiceAuto, configstore.ServiceOf(a))
	got, err := a.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, flyte2Want, got)
	assert.Equal(t, configstore.ServiceFlyte2, configstore.ServiceOf(a))
	assert.Equal(t, map[string]int{v2Meta: 1, v2Pub: 1}, log.take(), "Flyte 1's service is never asked")
}

// A Flyte 1 server: the first fetch asks Flyte 2's service once, falls
// back, and from then on asks only Flyte 1's, even when that fetch failed.
// The auto store falls back to Flyte 1, and remembers it once Flyte 1
// answered: not after a failure, which may be a moment of a rollout
// (issue 23, item 8).
func TestAutoRemoteFallsBackToFlyte1AndRemembers(t *testing.T) {
	srv, err := testserver.NewAdminServer(testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	log := new(methodLog)
	cc, err := grpc.NewClient(srv.Addr(), append(srv.DialOptions(), log.interceptor())...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })

	a, err := configstore.NewRemote(cc)
	require.NoError(t, err)
	srv.SetMetadataError(status.Error(codes.Unavailable, "down for a moment"))
	_, err = a.GetClientConfig(t.Context())
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Equal(t, configstore.ServiceAuto, configstore.ServiceOf(a), "Flyte 1 failed: nothing is remembered yet")
	calls := log.take()
	assert.Equal(t, 1, calls[v2Pub])
	assert.Positive(t, calls[v1Pub]+calls[v1Meta])

	srv.SetMetadataError(nil)
	got, err := a.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "https://idp/token", got.TokenEndpoint)
	assert.Equal(t, "flytectl", got.ClientID)
	assert.Empty(t, got.DataplaneDomain)
	assert.Equal(t, map[string]int{v2Meta: 1, v2Pub: 1, v1Meta: 1, v1Pub: 1}, log.take(), "Flyte 2 probed again, then Flyte 1")
	assert.Equal(t, configstore.ServiceFlyte1, configstore.ServiceOf(a), "Flyte 1 answered: remembered")

	_, err = a.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Empty(t, log.take(), "cached")
}

func TestAutoRemoteNoIdentityProvider(t *testing.T) {
	srv, cc, _ := newFlyte2Server(t, false, testserver.WithFlyte2PublicConfig(flyte2Public))
	srv.SetOAuth2MetadataError(errUnimplemented)
	a, err := configstore.NewRemote(cc)
	require.NoError(t, err)
	_, err = a.GetClientConfig(t.Context())
	require.ErrorIs(t, err, configstore.ErrNoIdentityProvider, "a Flyte 2 server without IdP is not taken for Flyte 1")
	assert.Contains(t, err.Error(), "admin.tokenUrl")
	assert.Equal(t, configstore.ServiceFlyte2, configstore.ServiceOf(a))
}

// A server that serves neither service: a clear error, nothing remembered.
func TestAutoRemoteNeitherService(t *testing.T) {
	srv := grpc.NewServer()
	lis := listen(t)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), insecureDial())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	a, err := configstore.NewRemote(cc)
	require.NoError(t, err)
	_, err = a.GetClientConfig(t.Context())
	require.Error(t, err)
	assert.Equal(t, codes.Unimplemented, status.Code(err))
	assert.Contains(t, err.Error(), "neither flyteidl2.auth.AuthMetadataService nor flyteidl.service.AuthMetadataService")
	assert.Equal(t, configstore.ServiceAuto, configstore.ServiceOf(a))
}

func TestNewRemoteService(t *testing.T) {
	_, cc, _ := newFlyte2Server(t, false)
	for svc, want := range map[configstore.Service]string{
		configstore.ServiceAuto:   "auto",
		configstore.ServiceFlyte1: "flyte1",
		configstore.ServiceFlyte2: "flyte2",
	} {
		s, err := configstore.NewRemote(cc, configstore.WithService(svc))
		require.NoError(t, err)
		assert.Equal(t, want, configstore.TypeOf(s))
	}
	_, err := configstore.NewRemote(cc, configstore.WithService(configstore.Service(9)))
	require.Error(t, err)
	_, err = configstore.NewRemote(nil)
	require.Error(t, err)
}

var errUnimplemented = connect.NewError(connect.CodeUnimplemented, errors.New("no identity provider configured"))

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis
}

func insecureDial() grpc.DialOption { return grpc.WithTransportCredentials(insecure.NewCredentials()) }
