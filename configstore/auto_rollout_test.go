package configstore_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/proto/authmeta2pb"
)

// rollout is a Flyte 2 server behind a front that, during a rollout,
// answered Flyte 2's service with 404 (Unimplemented) and Flyte 1's with
// Unavailable; once settled, Flyte 2's is served and Flyte 1's is not.
type rollout struct{ settled atomic.Bool }

func (r *rollout) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	flyte2 := strings.HasPrefix(method, "/flyteidl2.")
	switch {
	case !r.settled.Load() && flyte2:
		return status.Error(codes.Unimplemented, "404 during the rollout")
	case !r.settled.Load():
		return status.Error(codes.Unavailable, "the old backend is going away")
	case !flyte2:
		return status.Error(codes.Unimplemented, "not a Flyte 1 server")
	}
	var resp proto.Message = &authmeta2pb.GetPublicClientConfigResponse{ClientId: "flytectl"}
	if strings.HasSuffix(method, "/GetOAuth2Metadata") {
		resp = &authmeta2pb.GetOAuth2MetadataResponse{TokenEndpoint: "https://idp.example/token"}
	}
	var req authmeta2pb.GetPublicClientConfigRequest // both requests are empty
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	return stream.SendMsg(resp)
}

// A transient answer during a rollout does not pin the auto store to Flyte
// 1: once the server serves Flyte 2, the next fetch finds it (issue 23,
// item 8).
func TestAutoStoreIsNotPinnedByARollout(t *testing.T) {
	r := new(rollout)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(r.handle))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	s, err := configstore.NewRemote(cc)
	require.NoError(t, err)

	_, err = s.GetClientConfig(t.Context())
	require.Error(t, err)
	assert.Equal(t, configstore.ServiceAuto, configstore.ServiceOf(s), "nothing answered: nothing is remembered")

	r.settled.Store(true)
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "https://idp.example/token", got.TokenEndpoint)
	assert.Equal(t, configstore.ServiceFlyte2, configstore.ServiceOf(s))
}
