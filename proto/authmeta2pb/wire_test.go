package authmeta2pb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/flyteauth/grpcauth/internal/authmetarpc2"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/proto/authmeta2pb"
)

// The test-only flyte2pb messages carry flyteidl2.auth's names and field
// numbers; what one encodes, the other reads field for field, both ways.

func TestGetOAuth2MetadataResponseWire(t *testing.T) {
	theirs := &flyte2pb.GetOAuth2MetadataResponse{
		Issuer:                            "issuer",
		AuthorizationEndpoint:             "https://idp/authorize",
		TokenEndpoint:                     "https://idp/token",
		ResponseTypesSupported:            []string{"code"},
		ScopesSupported:                   []string{"all"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"},
		JwksUri:                           "https://idp/jwks",
		CodeChallengeMethodsSupported:     []string{"S256"},
		GrantTypesSupported:               []string{"client_credentials"},
		DeviceAuthorizationEndpoint:       "https://idp/device",
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(theirs)
	require.NoError(t, err)
	var ours authmeta2pb.GetOAuth2MetadataResponse
	require.NoError(t, proto.Unmarshal(b, &ours))
	assert.Empty(t, ours.ProtoReflect().GetUnknown(), "every field must be known")
	assert.Equal(t, "https://idp/token", ours.GetTokenEndpoint())
	assert.Equal(t, "https://idp/device", ours.GetDeviceAuthorizationEndpoint())
	assert.Equal(t, []string{"client_credentials"}, ours.GetGrantTypesSupported())
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(&ours)
	require.NoError(t, err)
	assert.Equal(t, b, again)
}

func TestGetPublicClientConfigResponseWire(t *testing.T) {
	theirs := &flyte2pb.GetPublicClientConfigResponse{
		ClientId:                 "flytectl",
		RedirectUri:              "http://localhost:53593/callback",
		Scopes:                   []string{"offline", "all"},
		AuthorizationMetadataKey: "flyte-authorization",
		ServiceHttpEndpoint:      "https://flyte.example",
		Audience:                 "https://flyte.example/api",
		DataplaneDomain:          "dp.flyte.example",
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(theirs)
	require.NoError(t, err)
	var ours authmeta2pb.GetPublicClientConfigResponse
	require.NoError(t, proto.Unmarshal(b, &ours))
	assert.Empty(t, ours.ProtoReflect().GetUnknown(), "every field must be known")
	assert.Equal(t, "flytectl", ours.GetClientId())
	assert.Equal(t, []string{"offline", "all"}, ours.GetScopes())
	assert.Equal(t, "flyte-authorization", ours.GetAuthorizationMetadataKey())
	assert.Equal(t, "https://flyte.example/api", ours.GetAudience())
	assert.Equal(t, "dp.flyte.example", ours.GetDataplaneDomain())
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(&ours)
	require.NoError(t, err)
	assert.Equal(t, b, again)
}

// TestOwnProtoPackage: only the method paths carry Flyte 2's names.
func TestOwnProtoPackage(t *testing.T) {
	for _, m := range []proto.Message{
		&authmeta2pb.GetOAuth2MetadataRequest{}, &authmeta2pb.GetOAuth2MetadataResponse{},
		&authmeta2pb.GetPublicClientConfigRequest{}, &authmeta2pb.GetPublicClientConfigResponse{},
	} {
		assert.Equal(t, "grpcauth.authmeta2.v1", string(m.ProtoReflect().Descriptor().ParentFile().Package()))
	}
	assert.Equal(t, "/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata", authmetarpc2.GetOAuth2MetadataMethod)
	assert.Equal(t, "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig", authmetarpc2.GetPublicClientConfigMethod)
}
