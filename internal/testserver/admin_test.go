package testserver_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func newAdmin(t *testing.T, opts ...testserver.AdminOption) (*testserver.AdminServer, *grpc.ClientConn) {
	t.Helper()
	admin, err := testserver.NewAdminServer(opts...)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	conn, err := grpc.NewClient(admin.Addr(), admin.DialOptions()...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return admin, conn
}

// newProtected returns a token server, an admin server validating its
// tokens, a connection to the admin server and a valid token.
func newProtected(t *testing.T, opts ...testserver.AdminOption) (*testserver.TokenServer, *testserver.AdminServer, *grpc.ClientConn, string) {
	t.Helper()
	ts := newTokenServer(t)
	admin, conn := newAdmin(t, append([]testserver.AdminOption{testserver.WithValidator(ts)}, opts...)...)
	return ts, admin, conn, issueToken(t, ts)
}

func issueToken(t *testing.T, ts *testserver.TokenServer) string {
	t.Helper()
	tok, err := fetchToken(t.Context(), ts, ccConfig(ts, oauth2.AuthStyleInHeader))
	require.NoError(t, err)
	return tok.AccessToken
}

func withToken(ctx context.Context, key, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, key, value)
}

// echoShape runs one of the four echo call shapes and checks the answer
// when it succeeds.
type echoShape struct {
	name string
	call func(ctx context.Context, t *testing.T, c *testserver.EchoClient) error
}

var echoShapes = []echoShape{
	{"unary", func(ctx context.Context, t *testing.T, c *testserver.EchoClient) error {
		got, err := c.Unary(ctx, "hi")
		if err == nil {
			assert.Equal(t, "hi", got)
		}
		return err
	}},
	{"server stream", func(ctx context.Context, t *testing.T, c *testserver.EchoClient) error {
		got, err := c.ServerStream(ctx, "v")
		if err == nil {
			assert.Equal(t, []string{"v-0", "v-1", "v-2"}, got)
		}
		return err
	}},
	{"client stream", func(ctx context.Context, t *testing.T, c *testserver.EchoClient) error {
		got, err := c.ClientStream(ctx, []string{"a", "b", "c"})
		if err == nil {
			assert.Equal(t, "a,b,c", got)
		}
		return err
	}},
	{"bidi", func(ctx context.Context, t *testing.T, c *testserver.EchoClient) error {
		got, err := c.Bidi(ctx, []string{"x", "y", "z"})
		if err == nil {
			assert.Equal(t, []string{"x", "y", "z"}, got)
		}
		return err
	}},
}

func TestAdminTransports(t *testing.T) {
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	want := &authmetapb.OAuth2MetadataResponse{
		Issuer:                 "https://issuer",
		TokenEndpoint:          "https://issuer/oauth2/token",
		ScopesSupported:        []string{"all"},
		GrantTypesSupported:    []string{"client_credentials"},
		ResponseTypesSupported: []string{"code"},
	}
	tests := []struct {
		name       string
		opts       []testserver.AdminOption
		wantPrefix string
	}{
		{"bufconn", nil, "passthrough:///bufnet"},
		{"bufconn TLS", []testserver.AdminOption{testserver.WithBufconn(), testserver.WithAdminTLS(ca)}, "passthrough:///bufnet"},
		{"TCP", []testserver.AdminOption{testserver.WithTCP()}, "127.0.0.1:"},
		{"TCP TLS", []testserver.AdminOption{testserver.WithTCP(), testserver.WithAdminTLS(ca)}, "127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin, conn := newAdmin(t, append(tt.opts, testserver.WithOAuth2Metadata(want))...)
			assert.True(t, strings.HasPrefix(admin.Addr(), tt.wantPrefix), admin.Addr())
			assert.Equal(t, strings.HasPrefix(tt.wantPrefix, "passthrough"), admin.Dialer() != nil)

			got, err := authmetarpc1.NewAuthMetadataServiceClient(conn).GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
			require.NoError(t, err)
			assert.True(t, proto.Equal(want, got), "got %v", got)
			for _, shape := range echoShapes {
				require.NoError(t, shape.call(t.Context(), t, testserver.NewEchoClient(conn)), shape.name)
			}
		})
	}

	t.Run("TLS server refuses a plaintext client", func(t *testing.T) {
		admin, err := testserver.NewAdminServer(testserver.WithAdminTLS(ca))
		require.NoError(t, err)
		defer admin.Close()
		conn, err := grpc.NewClient(admin.Addr(), grpc.WithContextDialer(admin.Dialer()),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		_, err = testserver.NewEchoClient(conn).Unary(t.Context(), "x")
		assert.Equal(t, codes.Unavailable, status.Code(err))
	})
}

func TestAuthMetadataService(t *testing.T) {
	public := &authmetapb.PublicClientAuthConfigResponse{
		ClientId:                 "flytectl",
		Scopes:                   []string{"all"},
		AuthorizationMetadataKey: "flyte-authorization",
		Audience:                 "https://admin",
	}
	admin, conn := newAdmin(t, testserver.WithPublicClientConfig(public))
	client := authmetarpc1.NewAuthMetadataServiceClient(conn)

	m, err := client.GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
	require.NoError(t, err)
	assert.True(t, proto.Equal(&authmetapb.OAuth2MetadataResponse{}, m), "default is empty")
	p, err := client.GetPublicClientConfig(t.Context(), &authmetapb.PublicClientAuthConfigRequest{})
	require.NoError(t, err)
	assert.True(t, proto.Equal(public, p))

	public.ClientId = "mutated by the caller"
	p, err = client.GetPublicClientConfig(t.Context(), &authmetapb.PublicClientAuthConfigRequest{})
	require.NoError(t, err)
	assert.Equal(t, "flytectl", p.GetClientId(), "the server keeps its own copy")

	admin.SetOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: "https://new"})
	m, err = client.GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
	require.NoError(t, err)
	assert.Equal(t, "https://new", m.GetTokenEndpoint())

	admin.SetMetadataError(status.Error(codes.Unavailable, "down for maintenance"))
	_, err = client.GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	_, err = client.GetPublicClientConfig(t.Context(), &authmetapb.PublicClientAuthConfigRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	admin.SetMetadataError(nil)
	_, err = client.GetPublicClientConfig(t.Context(), &authmetapb.PublicClientAuthConfigRequest{})
	require.NoError(t, err)

	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.Equal(t, int64(3), oauth2Calls)
	assert.Equal(t, int64(4), publicCalls)
	assert.False(t, admin.MetadataRPCsSawToken())
	assert.Len(t, admin.MetadataRPCHeaders(), 7)

	admin.SetMetadataLatency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = client.GetOAuth2Metadata(ctx, &authmetapb.OAuth2MetadataRequest{})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
	admin.SetMetadataLatency(0)

	for _, md := range []struct{ key, value string }{
		{"authorization", "Basic abc"},
		{"x-custom", "bearer abc"},
	} {
		admin.ResetCounters()
		_, err = client.GetOAuth2Metadata(withToken(t.Context(), md.key, md.value), &authmetapb.OAuth2MetadataRequest{})
		require.NoError(t, err)
		assert.True(t, admin.MetadataRPCsSawToken(), md.key)
		headers := admin.MetadataRPCHeaders()
		require.Len(t, headers, 1)
		assert.Equal(t, []string{md.value}, headers[0].Get(md.key))
	}
	admin.ResetCounters()
	oauth2Calls, publicCalls = admin.MetadataCalls()
	assert.Zero(t, oauth2Calls+publicCalls)
	assert.False(t, admin.MetadataRPCsSawToken())
	assert.Empty(t, admin.MetadataRPCHeaders())
}

func TestEchoOpen(t *testing.T) {
	admin, conn := newAdmin(t)
	echo := testserver.NewEchoClient(conn)
	for _, shape := range echoShapes {
		t.Run(shape.name, func(t *testing.T) {
			require.NoError(t, shape.call(t.Context(), t, echo))
		})
	}
	assert.Equal(t, int64(4), admin.EchoCalls())
	assert.Zero(t, admin.Rejected())
}

func TestEchoProtected(t *testing.T) {
	clock := testserver.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newTokenServer(t, testserver.WithTokenClock(clock.Now), testserver.WithLifetime(time.Minute))
	admin, conn := newAdmin(t, testserver.WithValidator(ts))
	echo := testserver.NewEchoClient(conn)

	revoked := issueToken(t, ts)
	ts.Revoke(revoked)
	expired := issueToken(t, ts)
	clock.Advance(30 * time.Second)
	valid := issueToken(t, ts) // 30 s younger than expired: still valid after the next step
	clock.Advance(45 * time.Second)

	tests := []struct {
		name    string
		key     string
		value   string
		token   string
		wantErr string // "" means success
	}{
		{name: "valid", key: "authorization", value: "Bearer " + valid},
		{name: "lowercase scheme", key: "authorization", value: "bearer " + valid},
		{name: "missing header", wantErr: `missing "authorization" header`},
		{name: "other key", key: "x-token", value: "Bearer " + valid, wantErr: "missing"},
		{name: "not bearer", key: "authorization", value: "Basic " + valid, token: valid, wantErr: "not a Bearer"},
		{name: "empty token", key: "authorization", value: "Bearer ", wantErr: "empty Bearer token"},
		{name: "unknown", key: "authorization", value: "Bearer nope-nope-nope", token: "nope-nope-nope", wantErr: "unknown token"},
		{name: "revoked", key: "authorization", value: "Bearer " + revoked, token: revoked, wantErr: "revoked"},
		{name: "expired", key: "authorization", value: "Bearer " + expired, token: expired, wantErr: "expired"},
	}
	for _, tt := range tests {
		for _, shape := range echoShapes {
			t.Run(tt.name+"/"+shape.name, func(t *testing.T) {
				ctx := t.Context()
				if tt.key != "" {
					ctx = withToken(ctx, tt.key, tt.value)
				}
				admin.ResetCounters()
				err := shape.call(ctx, t, echo)
				assert.Equal(t, int64(1), admin.EchoCalls())
				if tt.wantErr == "" {
					require.NoError(t, err)
					assert.Zero(t, admin.Rejected())
					assert.Equal(t, []string{tt.value}, admin.LastEchoMetadata().Get(tt.key))
					return
				}
				require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
				assert.Contains(t, status.Convert(err).Message(), tt.wantErr)
				if tt.token != "" {
					assert.NotContains(t, status.Convert(err).Message(), tt.token)
				}
				assert.Equal(t, int64(1), admin.Rejected())
			})
		}
	}

	t.Run("two values for the header", func(t *testing.T) {
		ctx := withToken(withToken(t.Context(), "authorization", "Bearer "+valid), "authorization", "Bearer "+valid)
		_, err := echo.Unary(ctx, "x")
		assert.Equal(t, codes.Unauthenticated, status.Code(err))
	})
	t.Run("SetRequireAuth(false)", func(t *testing.T) {
		admin.SetRequireAuth(false)
		defer admin.SetRequireAuth(true)
		_, err := echo.Unary(t.Context(), "x")
		require.NoError(t, err)
	})
	t.Run("metadata RPCs stay anonymous", func(t *testing.T) {
		_, err := authmetarpc1.NewAuthMetadataServiceClient(conn).GetOAuth2Metadata(t.Context(), &authmetapb.OAuth2MetadataRequest{})
		require.NoError(t, err)
	})
}

func TestHeaderKey(t *testing.T) {
	_, _, conn, token := newProtected(t, testserver.WithHeaderKey("Flyte-Authorization"))
	echo := testserver.NewEchoClient(conn)

	_, err := echo.Unary(withToken(t.Context(), "authorization", "Bearer "+token), "x")
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), `missing "flyte-authorization" header`)

	got, err := echo.Unary(withToken(t.Context(), "Flyte-Authorization", "Bearer "+token), "x")
	require.NoError(t, err)
	assert.Equal(t, "x", got)
}

func TestRejectAll(t *testing.T) {
	_, admin, conn, token := newProtected(t)
	echo := testserver.NewEchoClient(conn)
	ctx := withToken(t.Context(), "authorization", "Bearer "+token)

	admin.SetRejectAll(true)
	for _, shape := range echoShapes {
		err := shape.call(ctx, t, echo)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), shape.name)
	}
	assert.Equal(t, int64(4), admin.EchoCalls())
	assert.Equal(t, int64(4), admin.Rejected())

	admin.SetRejectAll(false)
	for _, shape := range echoShapes {
		require.NoError(t, shape.call(ctx, t, echo), shape.name)
	}
	assert.Equal(t, int64(8), admin.EchoCalls())
	assert.Equal(t, int64(4), admin.Rejected())

	admin.ResetCounters()
	assert.Zero(t, admin.EchoCalls())
	assert.Zero(t, admin.Rejected())
	assert.Nil(t, admin.LastEchoMetadata())
}

func TestStreamFailAfter(t *testing.T) {
	_, admin, conn, token := newProtected(t)
	echo := testserver.NewEchoClient(conn)
	ctx := withToken(t.Context(), "authorization", "Bearer "+token)

	admin.SetStreamFailAfter(2)
	got, err := echo.ServerStream(ctx, "v")
	assert.Equal(t, []string{"v-0", "v-1"}, got)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))

	got, err = echo.Bidi(ctx, []string{"a", "b", "c", "d"})
	assert.Equal(t, []string{"a", "b"}, got)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Equal(t, int64(2), admin.Rejected())

	_, err = echo.Unary(ctx, "x")
	require.NoError(t, err, "unary calls are not affected")

	admin.SetStreamFailAfter(0)
	got, err = echo.ServerStream(ctx, "v")
	require.NoError(t, err)
	assert.Len(t, got, 3)
}

func TestBidiRevalidates(t *testing.T) {
	ts, _, conn, token := newProtected(t)
	ctx, cancel := context.WithCancel(withToken(t.Context(), "authorization", "Bearer "+token))
	defer cancel()
	stream, err := testserver.NewEchoClient(conn).OpenBidi(ctx)
	require.NoError(t, err)

	require.NoError(t, stream.SendMsg(wrapperspb.String("first")))
	out := new(wrapperspb.StringValue)
	require.NoError(t, stream.RecvMsg(out))
	assert.Equal(t, "first", out.GetValue())

	ts.RevokeAll()
	require.NoError(t, stream.SendMsg(wrapperspb.String("second")))
	err = stream.RecvMsg(out)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "revoked")
	assert.NotContains(t, status.Convert(err).Message(), token)
}

func TestRawStreams(t *testing.T) {
	_, conn := newAdmin(t)
	echo := testserver.NewEchoClient(conn)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	ss, err := echo.OpenServerStream(ctx, "s")
	require.NoError(t, err)
	var got []string
	for {
		out := new(wrapperspb.StringValue)
		if err := ss.RecvMsg(out); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		got = append(got, out.GetValue())
	}
	assert.Equal(t, []string{"s-0", "s-1", "s-2"}, got)

	cs, err := echo.OpenClientStream(ctx)
	require.NoError(t, err)
	require.NoError(t, cs.SendMsg(wrapperspb.String("1")))
	require.NoError(t, cs.SendMsg(wrapperspb.String("2")))
	require.NoError(t, cs.CloseSend())
	out := new(wrapperspb.StringValue)
	require.NoError(t, cs.RecvMsg(out))
	assert.Equal(t, "1,2", out.GetValue())
}

func TestAdminCloseEndsCalls(t *testing.T) {
	admin, err := testserver.NewAdminServer()
	require.NoError(t, err)
	conn, err := grpc.NewClient(admin.Addr(), admin.DialOptions()...)
	require.NoError(t, err)
	defer conn.Close()

	admin.SetMetadataLatency(time.Hour)
	done := make(chan error, 1)
	go func() {
		_, err := authmetarpc1.NewAuthMetadataServiceClient(conn).GetOAuth2Metadata(context.Background(), &authmetapb.OAuth2MetadataRequest{})
		done <- err
	}()
	require.Eventually(t, func() bool { o, _ := admin.MetadataCalls(); return o == 1 }, 5*time.Second, time.Millisecond)
	admin.Close()
	admin.Close() // idempotent
	select {
	case err := <-done:
		assert.Equal(t, codes.Unavailable, status.Code(err))
	case <-time.After(5 * time.Second):
		t.Fatal("call still running after Close")
	}
}

func TestAdminOptionErrors(t *testing.T) {
	tests := map[string]testserver.AdminOption{
		"nil CA":        testserver.WithAdminTLS(nil),
		"nil validator": testserver.WithValidator(nil),
		"empty key":     testserver.WithHeaderKey(" "),
	}
	for name, opt := range tests {
		t.Run(name, func(t *testing.T) {
			admin, err := testserver.NewAdminServer(opt)
			require.Error(t, err)
			assert.Nil(t, admin)
		})
	}
}
