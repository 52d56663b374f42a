// Package authmetarpc2 is the hand-written gRPC client and server
// registration of Flyte 2's AuthMetadataService, whose messages are in
// proto/authmeta2pb. Both RPCs are anonymous: they never need a token.
package authmetarpc2

import (
	"context"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/proto/authmeta2pb"
)

// ServiceName is Flyte 2's name for the service, used on the wire.
const ServiceName = "flyteidl2.auth.AuthMetadataService"

// Full method paths of the two RPCs, as Flyte 2 serves them. Interceptors
// match on these to leave the anonymous RPCs untouched.
const (
	GetOAuth2MetadataMethod     = "/" + ServiceName + "/GetOAuth2Metadata"
	GetPublicClientConfigMethod = "/" + ServiceName + "/GetPublicClientConfig"
)

// AuthMetadataServiceClient calls Flyte 2's AuthMetadataService.
// Implementations are safe for concurrent use.
type AuthMetadataServiceClient interface {
	// GetOAuth2Metadata returns the authorization server metadata.
	GetOAuth2Metadata(ctx context.Context, in *authmeta2pb.GetOAuth2MetadataRequest, opts ...grpc.CallOption) (*authmeta2pb.GetOAuth2MetadataResponse, error)
	// GetPublicClientConfig returns the public client configuration.
	GetPublicClientConfig(ctx context.Context, in *authmeta2pb.GetPublicClientConfigRequest, opts ...grpc.CallOption) (*authmeta2pb.GetPublicClientConfigResponse, error)
}

type authMetadataServiceClient struct {
	cc grpc.ClientConnInterface
}

// NewAuthMetadataServiceClient returns a client that calls the service over
// cc. It is safe for concurrent use when cc is.
func NewAuthMetadataServiceClient(cc grpc.ClientConnInterface) AuthMetadataServiceClient {
	return &authMetadataServiceClient{cc: cc}
}

func (c *authMetadataServiceClient) GetOAuth2Metadata(ctx context.Context, in *authmeta2pb.GetOAuth2MetadataRequest, opts ...grpc.CallOption) (*authmeta2pb.GetOAuth2MetadataResponse, error) {
	out := new(authmeta2pb.GetOAuth2MetadataResponse)
	if err := c.cc.Invoke(ctx, GetOAuth2MetadataMethod, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *authMetadataServiceClient) GetPublicClientConfig(ctx context.Context, in *authmeta2pb.GetPublicClientConfigRequest, opts ...grpc.CallOption) (*authmeta2pb.GetPublicClientConfigResponse, error) {
	out := new(authmeta2pb.GetPublicClientConfigResponse)
	if err := c.cc.Invoke(ctx, GetPublicClientConfigMethod, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

// AuthMetadataServiceServer is what a server implements to serve the
// service. Implementations must be safe for concurrent use.
type AuthMetadataServiceServer interface {
	// GetOAuth2Metadata returns the authorization server metadata.
	GetOAuth2Metadata(context.Context, *authmeta2pb.GetOAuth2MetadataRequest) (*authmeta2pb.GetOAuth2MetadataResponse, error)
	// GetPublicClientConfig returns the public client configuration.
	GetPublicClientConfig(context.Context, *authmeta2pb.GetPublicClientConfigRequest) (*authmeta2pb.GetPublicClientConfigResponse, error)
}

// RegisterAuthMetadataServiceServer registers srv on s under Flyte 2's
// service name.
func RegisterAuthMetadataServiceServer(s grpc.ServiceRegistrar, srv AuthMetadataServiceServer) {
	s.RegisterService(&serviceDesc, srv)
}

func getOAuth2MetadataHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(authmeta2pb.GetOAuth2MetadataRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(AuthMetadataServiceServer)
	if interceptor == nil {
		return s.GetOAuth2Metadata(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: GetOAuth2MetadataMethod}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.GetOAuth2Metadata(ctx, req.(*authmeta2pb.GetOAuth2MetadataRequest))
	})
}

func getPublicClientConfigHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(authmeta2pb.GetPublicClientConfigRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(AuthMetadataServiceServer)
	if interceptor == nil {
		return s.GetPublicClientConfig(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: GetPublicClientConfigMethod}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.GetPublicClientConfig(ctx, req.(*authmeta2pb.GetPublicClientConfigRequest))
	})
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*AuthMetadataServiceServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "GetOAuth2Metadata", Handler: getOAuth2MetadataHandler},
		{MethodName: "GetPublicClientConfig", Handler: getPublicClientConfigHandler},
	},
	Metadata: "authmeta2pb/authmeta2.proto",
}
