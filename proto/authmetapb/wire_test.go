package authmetapb_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// wire builds a message by hand, field by field, as flyteidl's encoder
// would: the field numbers and types are the ones of flyteidl's
// service/auth.proto.
type wire []byte

func (w wire) str(num protowire.Number, s string) wire {
	b := protowire.AppendTag(w, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func TestOAuth2MetadataResponseFieldNumbers(t *testing.T) {
	b := wire(nil).
		str(1, "issuer").
		str(2, "https://idp/authorize").
		str(3, "https://idp/token").
		str(4, "code").
		str(5, "all").
		str(6, "client_secret_basic").
		str(7, "https://idp/jwks").
		str(8, "S256").
		str(9, "client_credentials").
		str(10, "https://idp/device")
	var m authmetapb.OAuth2MetadataResponse
	require.NoError(t, proto.Unmarshal(b, &m))
	assert.Equal(t, "issuer", m.GetIssuer())
	assert.Equal(t, "https://idp/authorize", m.GetAuthorizationEndpoint())
	assert.Equal(t, "https://idp/token", m.GetTokenEndpoint())
	assert.Equal(t, []string{"code"}, m.GetResponseTypesSupported())
	assert.Equal(t, []string{"all"}, m.GetScopesSupported())
	assert.Equal(t, []string{"client_secret_basic"}, m.GetTokenEndpointAuthMethodsSupported())
	assert.Equal(t, "https://idp/jwks", m.GetJwksUri())
	assert.Equal(t, []string{"S256"}, m.GetCodeChallengeMethodsSupported())
	assert.Equal(t, []string{"client_credentials"}, m.GetGrantTypesSupported())
	assert.Equal(t, "https://idp/device", m.GetDeviceAuthorizationEndpoint())
	assert.Empty(t, m.ProtoReflect().GetUnknown(), "every field must be known")

	// Encoding gives back the same bytes: same numbers, same wire types.
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&m)
	require.NoError(t, err)
	assert.Equal(t, []byte(b), out)
}

func TestPublicClientAuthConfigResponseFieldNumbers(t *testing.T) {
	b := wire(nil).
		str(1, "flytectl").
		str(2, "http://localhost:53593/callback").
		str(3, "offline").
		str(3, "all").
		str(4, "flyte-authorization").
		str(5, "https://admin").
		str(6, "https://aud")
	var m authmetapb.PublicClientAuthConfigResponse
	require.NoError(t, proto.Unmarshal(b, &m))
	assert.Equal(t, "flytectl", m.GetClientId())
	assert.Equal(t, "http://localhost:53593/callback", m.GetRedirectUri())
	assert.Equal(t, []string{"offline", "all"}, m.GetScopes())
	assert.Equal(t, "flyte-authorization", m.GetAuthorizationMetadataKey())
	assert.Equal(t, "https://admin", m.GetServiceHttpEndpoint())
	assert.Equal(t, "https://aud", m.GetAudience())
	assert.Empty(t, m.ProtoReflect().GetUnknown(), "every field must be known")
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&m)
	require.NoError(t, err)
	assert.Equal(t, []byte(b), out)
}

// The messages must not take flyteidl's names, or a binary linking both
// would panic at init with a registration conflict.
func TestOwnProtoPackage(t *testing.T) {
	for _, m := range []proto.Message{
		&authmetapb.OAuth2MetadataRequest{}, &authmetapb.OAuth2MetadataResponse{},
		&authmetapb.PublicClientAuthConfigRequest{}, &authmetapb.PublicClientAuthConfigResponse{},
	} {
		name := m.ProtoReflect().Descriptor().FullName()
		assert.Equal(t, "grpcauth.authmeta.v1", string(name.Parent()), name)
	}
}

type recordingServer struct{}

func (r recordingServer) GetOAuth2Metadata(context.Context, *authmetapb.OAuth2MetadataRequest) (*authmetapb.OAuth2MetadataResponse, error) {
	return &authmetapb.OAuth2MetadataResponse{TokenEndpoint: "https://idp/token"}, nil
}

func (r recordingServer) GetPublicClientConfig(context.Context, *authmetapb.PublicClientAuthConfigRequest) (*authmetapb.PublicClientAuthConfigResponse, error) {
	return &authmetapb.PublicClientAuthConfigResponse{AuthorizationMetadataKey: "flyte-authorization"}, nil
}

// The client and the registration use FlyteAdmin's method paths.
func TestMethodPathsOnTheWire(t *testing.T) {
	lis := bufconn.Listen(1 << 16)
	seen := make(chan string, 4)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		seen <- info.FullMethod
		return h(ctx, req)
	}))
	authmetarpc1.RegisterAuthMetadataServiceServer(srv, recordingServer{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()

	c := authmetarpc1.NewAuthMetadataServiceClient(cc)
	meta, err := c.GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
	require.NoError(t, err)
	assert.Equal(t, "https://idp/token", meta.GetTokenEndpoint())
	assert.Equal(t, "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata", <-seen)

	pub, err := c.GetPublicClientConfig(t.Context(), &authmetapb.PublicClientAuthConfigRequest{})
	require.NoError(t, err)
	assert.Equal(t, "flyte-authorization", pub.GetAuthorizationMetadataKey())
	assert.Equal(t, "/flyteidl.service.AuthMetadataService/GetPublicClientConfig", <-seen)

	assert.Equal(t, authmetarpc1.GetOAuth2MetadataMethod, "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata")
	assert.Equal(t, authmetarpc1.GetPublicClientConfigMethod, "/flyteidl.service.AuthMetadataService/GetPublicClientConfig")
}
