package grpcauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

func TestAuthMode(t *testing.T) {
	for _, tt := range []struct {
		cfg  grpcauth.Config
		want string
	}{
		{grpcauth.Config{}, ""},
		{grpcauth.Config{ClientID: "id"}, grpcauth.AuthTypeClientSecret},
		{grpcauth.Config{AuthType: "standard"}, grpcauth.AuthTypePkce},
		{grpcauth.Config{AuthType: "deviceflow"}, grpcauth.AuthTypeDeviceFlow},
		{grpcauth.Config{AuthType: "external_process"}, grpcauth.AuthTypeExternalCommand},
	} {
		got, err := tt.cfg.AuthMode()
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	_, err := grpcauth.Config{AuthType: "magic"}.AuthMode()
	require.ErrorContains(t, err, `unknown authType "magic"`)
}
