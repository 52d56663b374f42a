package configstore_test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// fuzzRaw is a message kept as its wire bytes.
type fuzzRaw struct{ b []byte }

// fuzzRawCodec lets the fuzz server answer arbitrary bytes: it sends a
// fuzzRaw's bytes as they are, and reads requests without decoding them.
type fuzzRawCodec struct{}

func (fuzzRawCodec) Marshal(v any) ([]byte, error) { return v.(*fuzzRaw).b, nil }

func (fuzzRawCodec) Unmarshal(data []byte, v any) error {
	v.(*fuzzRaw).b = bytes.Clone(data)
	return nil
}

func (fuzzRawCodec) Name() string { return "proto" }

// fuzzMetaServer answers AuthMetadataService's two RPCs with the bytes
// stored for the call's fuzz-id, and counts the calls.
type fuzzMetaServer struct {
	answers sync.Map // fuzz-id -> *fuzzMetaAnswer
}

type fuzzMetaAnswer struct {
	oauth2, public []byte
	calls          atomic.Int64
}

func (s *fuzzMetaServer) handler(public bool) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		if err := dec(new(fuzzRaw)); err != nil {
			return nil, err
		}
		md, _ := metadata.FromIncomingContext(ctx)
		ids := md.Get("fuzz-id")
		if len(ids) != 1 {
			return nil, status.Error(codes.InvalidArgument, "no fuzz-id")
		}
		v, ok := s.answers.Load(ids[0])
		if !ok {
			return nil, status.Error(codes.NotFound, "unknown fuzz-id")
		}
		a := v.(*fuzzMetaAnswer)
		a.calls.Add(1)
		if public {
			return &fuzzRaw{b: a.public}, nil
		}
		return &fuzzRaw{b: a.oauth2}, nil
	}
}

// fuzzTaggedConn adds the input's fuzz-id to every call.
type fuzzTaggedConn struct {
	cc *grpc.ClientConn
	id string
}

func (c fuzzTaggedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.cc.Invoke(metadata.AppendToOutgoingContext(ctx, "fuzz-id", c.id), method, args, reply, opts...)
}

func (c fuzzTaggedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(metadata.AppendToOutgoingContext(ctx, "fuzz-id", c.id), desc, method, opts...)
}

// FuzzRemoteResponses has a raw gRPC server, registered under FlyteAdmin's
// AuthMetadataService name, answer GetOAuth2Metadata and
// GetPublicClientConfig with arbitrary bytes, and reads them through a
// Remote. Whatever the bytes, GetClientConfig ends within its fetch timeout;
// it fails (codes.Internal) exactly when the bytes are not valid messages,
// fails with ErrInvalidMetadata exactly when the token endpoint is not an
// absolute http(s) URL, and otherwise returns what the messages say, cached;
// its error text stays short.
func FuzzRemoteResponses(f *testing.F) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ForceServerCodec(fuzzRawCodec{}))
	meta := &fuzzMetaServer{}
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: authmetarpc1.ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "GetOAuth2Metadata", Handler: meta.handler(false)},
			{MethodName: "GetPublicClientConfig", Handler: meta.handler(true)},
		},
	}, meta)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	f.Cleanup(func() { srv.Stop(); <-served })
	cc, err := grpc.NewClient("passthrough:///fuzz",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(f, err)
	f.Cleanup(func() { _ = cc.Close() })

	good, err := proto.Marshal(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: "https://idp.example/token"})
	require.NoError(f, err)
	f.Add(good, []byte{})

	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, oauth2, public []byte) {
		id := strconv.FormatInt(seq.Add(1), 10)
		answer := &fuzzMetaAnswer{oauth2: oauth2, public: public}
		meta.answers.Store(id, answer)
		defer meta.answers.Delete(id)

		r, err := configstore.NewRemote(fuzzTaggedConn{cc: cc, id: id}, configstore.WithTimeout(5*time.Second))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		got, err := r.GetClientConfig(ctx)
		require.NoError(t, ctx.Err(), "GetClientConfig outlived its fetch timeout")

		wantMeta, wantPub := new(authmetapb.OAuth2MetadataResponse), new(authmetapb.PublicClientAuthConfigResponse)
		metaErr, pubErr := proto.Unmarshal(oauth2, wantMeta), proto.Unmarshal(public, wantPub)
		if err != nil {
			require.LessOrEqual(t, len(err.Error()), 1024, "error text of %d bytes", len(err.Error()))
			calls := answer.calls.Load()
			_, again := r.GetClientConfig(ctx)
			require.Error(t, again)
			require.Greater(t, answer.calls.Load(), calls, "a failure was cached")
		}
		switch {
		case metaErr != nil || pubErr != nil:
			require.Error(t, err, "bytes that are not valid messages were accepted")
			require.Equal(t, codes.Internal, status.Code(err), "%v", err)
		case !fuzzUsableURL(wantMeta.GetTokenEndpoint()):
			require.ErrorIs(t, err, configstore.ErrInvalidMetadata, "token endpoint %q", wantMeta.GetTokenEndpoint())
		default:
			require.NoError(t, err)
			require.Equal(t, &configstore.ClientConfig{
				Issuer:                      wantMeta.GetIssuer(),
				TokenEndpoint:               wantMeta.GetTokenEndpoint(),
				AuthorizationEndpoint:       wantMeta.GetAuthorizationEndpoint(),
				DeviceAuthorizationEndpoint: wantMeta.GetDeviceAuthorizationEndpoint(),
				RedirectURI:                 wantPub.GetRedirectUri(),
				ClientID:                    wantPub.GetClientId(),
				Scopes:                      wantPub.GetScopes(),
				HeaderKey:                   wantPub.GetAuthorizationMetadataKey(),
				Audience:                    wantPub.GetAudience(),
				ServiceHTTPEndpoint:         wantPub.GetServiceHttpEndpoint(),
			}, got)
			calls := answer.calls.Load()
			cached, err := r.GetClientConfig(ctx)
			require.NoError(t, err)
			require.Equal(t, got, cached)
			require.Equal(t, calls, answer.calls.Load(), "the answer was not cached")
		}
	})
}

// fuzzUsableURL is the test's own statement of a usable token endpoint.
func fuzzUsableURL(s string) bool {
	u, err := url.Parse(s)
	return s != "" && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
