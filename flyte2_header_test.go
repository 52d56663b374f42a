package grpcauth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
)

const headerWarning = "the server is Flyte 2, which reads the token only from the authorization header"

// A config that sends the token under another header than authorization
// gets a warning once the server turns out to be Flyte 2, and only then.
func TestAuthorizationHeaderOtherThanAuthorizationOnFlyte2Warns(t *testing.T) {
	f := newFixture(t, fixtureOptions{plaintext: true})
	tokens, flyte1 := f.tokens, f.admin
	flyte2, err := testserver.NewConnectServer(testserver.WithConnectValidator(tokens),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	t.Cleanup(flyte2.Close)

	for _, tt := range []struct {
		name, endpoint, header string
		warn                   bool
	}{
		{"Flyte 2, flyte-authorization", flyte2.Addr(), "flyte-authorization", true},
		{"Flyte 2, Authorization", flyte2.Addr(), "Authorization", false},
		{"Flyte 1, flyte-authorization", flyte1.Addr(), "flyte-authorization", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs testserver.LogBuffer
			c := dial(t, grpcauth.Config{Endpoint: tt.endpoint, Insecure: true, ClientID: testClientID, ClientSecret: testSecret, AuthorizationHeader: tt.header},
				grpcauth.WithLogger(logs.Logger()))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			for range 2 {
				require.NoError(t, c.Authenticator.RefreshCredentials(ctx))
			}
			assert.Equal(t, map[bool]int{true: 1, false: 0}[tt.warn], strings.Count(logs.String(), headerWarning), logs.String())
		})
	}
}
