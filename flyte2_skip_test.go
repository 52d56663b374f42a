package grpcauth_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/authmetarpc2"
	"github.com/flyteauth/grpcauth/proto/authmeta2pb"
)

// A Flyte 2 server without an identity provider: GetPublicClientConfig
// answers, GetOAuth2Metadata is Unimplemented.
type noIdP struct{}

func (noIdP) GetOAuth2Metadata(context.Context, *authmeta2pb.GetOAuth2MetadataRequest) (*authmeta2pb.GetOAuth2MetadataResponse, error) {
	return nil, status.Error(codes.Unimplemented, "no IdP")
}
func (noIdP) GetPublicClientConfig(context.Context, *authmeta2pb.GetPublicClientConfigRequest) (*authmeta2pb.GetPublicClientConfigResponse, error) {
	return &authmeta2pb.GetPublicClientConfigResponse{AuthorizationMetadataKey: "authorization"}, nil
}

// An external command needs no token endpoint: a Flyte 2 deployment
// without an identity provider does not stop it.
func TestExternalCommandOnFlyte2WithoutIdentityProvider(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		if v := md.Get("authorization"); len(v) != 1 || v[0] != "Bearer tok" {
			return status.Error(codes.Unauthenticated, "no token")
		}
		return ss.SendMsg(new(emptypb.Empty))
	}))
	authmetarpc2.RegisterAuthMetadataServiceServer(srv, noIdP{})
	go srv.Serve(lis)
	defer srv.Stop()

	c, err := grpcauth.New(grpcauth.Config{
		Endpoint: lis.Addr().String(), Insecure: true,
		AuthType: grpcauth.AuthTypeExternalCommand, Command: []string{"echo", "tok"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Conn.Invoke(context.Background(), "/svc/M", new(emptypb.Empty), new(emptypb.Empty))
	t.Logf("call: %v", err)
	if err != nil {
		t.Errorf("ExternalCommand needs no token endpoint (WithoutOAuth2Metadata), yet the call failed")
	}
}
