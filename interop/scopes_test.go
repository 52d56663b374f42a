package interop

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// TestScopesAndAudienceReachHydra is scenario 2: the scopes and audience
// the client asks for are the ones Hydra grants, as its introspection
// shows. Without scopes or audience in the config file, the admin server's
// public client config supplies them; explicit ones win.
func TestScopesAndAudienceReachHydra(t *testing.T) {
	const (
		adminAudience = "https://flyte.example/admin"
		otherAudience = "https://other.example"
	)
	allowed := clientSpec{
		Scopes:    []string{"flyte.read", "flyte.write", "flyte.advertised", "offline"},
		Audiences: []string{adminAudience, otherAudience},
	}
	advertised := &authmetapb.PublicClientAuthConfigResponse{
		Scopes:   []string{"flyte.advertised", "offline"},
		Audience: otherAudience,
	}
	tests := []struct {
		name       string
		public     *authmetapb.PublicClientAuthConfigResponse
		file       fileSpec
		wantScopes []string
		wantAud    []string
	}{
		{
			name:       "explicit scopes and audience",
			public:     advertised,
			file:       fileSpec{scopes: []string{"flyte.read", "flyte.write"}, audience: adminAudience},
			wantScopes: []string{"flyte.read", "flyte.write"},
			wantAud:    []string{adminAudience},
		},
		{
			name:       "scopes and audience from the server",
			public:     advertised,
			wantScopes: []string{"flyte.advertised", "offline"},
			wantAud:    []string{otherAudience},
		},
		{
			name:       "explicit scopes win, audience from the server",
			public:     advertised,
			file:       fileSpec{scopes: []string{"flyte.write"}},
			wantScopes: []string{"flyte.write"},
			wantAud:    []string{otherAudience},
		},
		{
			name:       "explicit audience wins, scopes from the server",
			public:     advertised,
			file:       fileSpec{audience: adminAudience},
			wantScopes: []string{"flyte.advertised", "offline"},
			wantAud:    []string{adminAudience},
		},
		{
			name:    "none anywhere",
			wantAud: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackSpec{client: allowed, public: tt.public})
			c, _ := dial(t, loadConfig(t, s.writeConfig(t, tt.file)))
			require.NoError(t, unary(t.Context(), testserver.NewEchoClient(c.Conn), "hi"))

			// What the admin server learnt from Hydra about the token
			// the call carried.
			token, info := s.tokens.Last()
			require.NotEmpty(t, token)
			assert.Equal(t, s.client.ID, info.ClientID)
			assert.Equal(t, tt.wantScopes, info.Scopes, "scopes the admin server saw")

			// And Hydra's own word, with the audience as the list it is.
			in := hy.Introspect(t, token)
			require.True(t, in.Active)
			assert.Equal(t, tt.wantScopes, in.Scopes(), "scopes Hydra granted")
			assert.ElementsMatch(t, tt.wantAud, []string(in.Audience), "audience Hydra granted")
		})
	}
}

// TestAudienceNotAllowed checks that an audience outside the client's allow
// list is refused by Hydra and that the refusal reaches the caller as
// Unauthenticated with Hydra's reason, after a single token request.
func TestAudienceNotAllowed(t *testing.T) {
	s := newStack(t, stackSpec{client: clientSpec{Audiences: []string{"https://allowed.example"}}})
	c, _ := dial(t, loadConfig(t, s.writeConfig(t, fileSpec{audience: "https://not-allowed.example"})))
	err := unary(t.Context(), testserver.NewEchoClient(c.Conn), "hi")
	requireTokenFailure(t, err, false, "invalid_request", s.client.Secret)
	assert.Equal(t, int64(1), c.Authenticator.Stats().TokenRequests)
}
