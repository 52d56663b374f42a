// Package authmetarpc1 is the hand-written gRPC client and server
// registration of Flyte 1's AuthMetadataService, whose messages are in
// proto/authmetapb. Both RPCs are anonymous: they never need a token.
package authmetarpc1

import (
	"context"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// ServiceName is FlyteAdmin's name for the service, used on the wire.
const ServiceName = "flyteidl.service.AuthMetadataService"

// Full method paths of the two RPCs, as FlyteAdmin serves them. Interceptors
// match on these to leave the anonymous RPCs untouched.
const (
	GetOAuth2MetadataMethod     = "/" + ServiceName + "/GetOAuth2Metadata"
	GetPublicClientConfigMethod = "/" + ServiceName + "/GetPublicClientConfig"
)

// AuthMetadataServiceClient calls FlyteAdmin's AuthMetadataService.
// Implementations are safe for concurrent use.
type AuthMetadataServiceClient interface {
	// GetOAuth2Metadata returns the authorization server metadata.
	GetOAuth2Metadata(ctx context.Context, in *authmetapb.OAuth2MetadataRequest, opts ...grpc.CallOption) (*authmetapb.OAuth2MetadataResponse, error)
	// GetPublicClientConfig returns the public client configuration.
	GetPublicClientConfig(ctx context.Context, in *authmetapb.PublicClientAuthConfigRequest, opts ...grpc.CallOption) (*authmetapb.PublicClientAuthConfigResponse, error)
}

type authMetadataServiceClient struct {
	cc grpc.ClientConnInterface
}

// NewAuthMetadataServiceClient returns a client that calls the service over
// cc. It is safe for concurrent use when cc is.
func NewAuthMetadataServiceClient(cc grpc.ClientConnInterface) AuthMetadataServiceClient {
	return &authMetadataServiceClient{cc: cc}
}

func (c *authMetadataServiceClient) GetOAuth2Metadata(ctx context.Context, in *authmetapb.OAuth2MetadataRequest, opts ...grpc.CallOption) (*authmetapb.OAuth2MetadataResponse, error) {
	out := new(authmetapb.OAuth2MetadataResponse)
	if err := c.cc.Invoke(ctx, GetOAuth2MetadataMethod, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *authMetadataServiceClient) GetPublicClientConfig(ctx context.Context, in *authmetapb.PublicClientAuthConfigRequest, opts ...grpc.CallOption) (*authmetapb.PublicClientAuthConfigResponse, error) {
	out := new(authmetapb.PublicClientAuthConfigResponse)
	if err := c.cc.Invoke(ctx, GetPublicClientConfigMethod, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

// AuthMetadataServiceServer is what a server implements to serve the
// service. Implementations must be safe for concurrent use.
type AuthMetadataServiceServer interface {
	// GetOAuth2Metadata returns the authorization server metadata.
	GetOAuth2Metadata(context.Context, *authmetapb.OAuth2MetadataRequest) (*authmetapb.OAuth2MetadataResponse, error)
	// GetPublicClientConfig returns the public client configuration.
	GetPublicClientConfig(context.Context, *authmetapb.PublicClientAuthConfigRequest) (*authmetapb.PublicClientAuthConfigResponse, error)
}

// RegisterAuthMetadataServiceServer registers srv on s under FlyteAdmin's
// service name.
func RegisterAuthMetadataServiceServer(s grpc.ServiceRegistrar, srv AuthMetadataServiceServer) {
	s.RegisterService(&serviceDesc, srv)
}

func getOAuth2MetadataHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(authmetapb.OAuth2MetadataRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(AuthMetadataServiceServer)
	if interceptor == nil {
		return s.GetOAuth2Metadata(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: GetOAuth2MetadataMethod}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.GetOAuth2Metadata(ctx, req.(*authmetapb.OAuth2MetadataRequest))
	})
}

func getPublicClientConfigHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(authmetapb.PublicClientAuthConfigRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(AuthMetadataServiceServer)
	if interceptor == nil {
		return s.GetPublicClientConfig(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: GetPublicClientConfigMethod}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.GetPublicClientConfig(ctx, req.(*authmetapb.PublicClientAuthConfigRequest))
	})
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*AuthMetadataServiceServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "GetOAuth2Metadata", Handler: getOAuth2MetadataHandler},
		{MethodName: "GetPublicClientConfig", Handler: getPublicClientConfigHandler},
	},
	Metadata: "authmetapb/authmeta.proto",
}
