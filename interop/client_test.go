package interop

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// TestNewClientFromConfigFile is scenario 1: a client built by NewClient
// from a Flyte config file with authType ClientSecret gets its token from
// Hydra, with a secret full of characters that the Basic credentials must
// form-url-encode, and makes unary and streaming calls that the admin
// server accepts because Hydra says the token is active.
func TestNewClientFromConfigFile(t *testing.T) {
	s := newStack(t, stackSpec{client: clientSpec{Secret: specialSecret}})
	require.Equal(t, specialSecret, s.client.Secret)

	cfg := loadConfig(t, s.writeConfig(t, fileSpec{}))
	require.Equal(t, grpcauth.AuthTypeClientSecret, cfg.AuthType)
	conn, err := grpcauth.NewClient(cfg)
	require.NoError(t, err)
	defer func() { assert.NoError(t, conn.Close()) }()
	echo := testserver.NewEchoClient(conn)
	ctx := t.Context()

	require.NoError(t, unary(ctx, echo, "hello"))
	// The first call may go out without a token (the authenticator is
	// lazy) and be rejected once; after that, never again.
	firstRejections := s.admin.Rejected()
	assert.LessOrEqual(t, firstRejections, int64(1), "the first call is rejected at most once")

	got, err := echo.ServerStream(ctx, "v")
	require.NoError(t, err)
	assert.Equal(t, []string{"v-0", "v-1", "v-2"}, got)

	joined, err := echo.ClientStream(ctx, []string{"a", "b", "c"})
	require.NoError(t, err)
	assert.Equal(t, "a,b,c", joined)

	bidi, err := echo.Bidi(ctx, []string{"x", "y", "z"})
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "y", "z"}, bidi)

	require.NoError(t, unary(ctx, echo, "again"))

	assert.Equal(t, firstRejections, s.admin.Rejected(), "no call after the first was rejected")
	assert.Equal(t, 1, s.tokens.Distinct(), "one token served every call")
	token, info := s.tokens.Last()
	assert.Equal(t, s.client.ID, info.ClientID)
	in := hy.Introspect(t, token)
	assert.True(t, in.Active)
	assert.Equal(t, s.client.ID, in.ClientID)
	assert.Equal(t, "access_token", in.TokenUse)

	// The AuthMetadataService RPCs are anonymous: no token went to them.
	assert.False(t, s.admin.MetadataRPCsSawToken())
}

// TestSpecialSecretNeedsEncoding is the control of scenario 1: Hydra
// refuses the same secret sent raw in the Basic header, so the success
// above shows that the client encodes it.
func TestSpecialSecretNeedsEncoding(t *testing.T) {
	c := hy.CreateClient(t, clientSpec{Secret: specialSecret})
	post := func(id, secret string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, hy.TokenURL(),
			strings.NewReader(url.Values{"grant_type": {grantClientCredentials}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := hy.http.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	// Hydra URL-decodes the Basic credentials: the raw secret's "%&="
	// fails to decode (400), a raw "+" would decode to a space (401).
	raw := post(c.ID, c.Secret)
	assert.True(t, raw == http.StatusBadRequest || raw == http.StatusUnauthorized, "raw secret: HTTP %d, want 400 or 401", raw)
	assert.Equal(t, http.StatusOK, post(url.QueryEscape(c.ID), url.QueryEscape(c.Secret)), "form-url-encoded secret")
}
