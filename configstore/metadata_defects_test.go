package configstore_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// mdRecorder is a gRPC server that serves no service: it records the
// method and incoming metadata of every call and answers Unimplemented,
// which makes an AutoRemote ask both generations' services.
type mdRecorder struct {
	mu    sync.Mutex // guards calls
	calls map[string][]metadata.MD
}

func (r *mdRecorder) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	r.mu.Lock()
	r.calls[method] = append(r.calls[method], md.Copy())
	r.mu.Unlock()
	return status.Error(codes.Unimplemented, "not served here")
}

func (r *mdRecorder) take() map[string][]metadata.MD {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = map[string][]metadata.MD{}
	return out
}

// newMDRecorder starts an mdRecorder on bufconn and returns a connection
// to it.
func newMDRecorder(t *testing.T) (*mdRecorder, *grpc.ClientConn) {
	t.Helper()
	rec := &mdRecorder{calls: map[string][]metadata.MD{}}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(rec.handle))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return rec, cc
}

// callerContext is a caller's context that carries its own outgoing
// metadata: an authorization header and a tenant header.
func callerContext(t *testing.T) context.Context {
	ctx := metadata.NewOutgoingContext(t.Context(), metadata.Pairs(
		"authorization", "Bearer the-callers-own-token",
		"x-tenant", "acme"))
	return metadata.AppendToOutgoingContext(ctx, "x-appended", "too")
}

// requireNoCallerMetadata fails if none of wantMethods was called, or if
// any recorded call carried a header of callerContext. (A store asks its
// two RPCs in parallel and the first failure may cancel the other before
// it is sent.)
func requireNoCallerMetadata(t *testing.T, calls map[string][]metadata.MD, wantMethods ...string) {
	t.Helper()
	called := 0
	for _, m := range wantMethods {
		called += len(calls[m])
	}
	require.Positive(t, called, "none of %v was called", wantMethods)
	for method, mds := range calls {
		for _, md := range mds {
			for _, k := range []string{"authorization", "x-tenant", "x-appended"} {
				assert.Empty(t, md.Get(k), "%s carried the caller's %s header", method, k)
			}
		}
	}
}

// The anonymous AuthMetadataService calls of every store carry none of
// the caller's outgoing metadata.
func TestMetadataRPCsCarryNoCallerMetadata(t *testing.T) {
	stores := []struct {
		name    string
		new     func(grpc.ClientConnInterface) (configstore.ClientConfigStore, error)
		methods []string
	}{
		{"Remote", func(cc grpc.ClientConnInterface) (configstore.ClientConfigStore, error) {
			return configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte1))
		},
			[]string{v1Meta, v1Pub}},
		{"Flyte2Remote", func(cc grpc.ClientConnInterface) (configstore.ClientConfigStore, error) {
			return configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte2))
		}, []string{v2Meta, v2Pub}},
		{"AutoRemote", func(cc grpc.ClientConnInterface) (configstore.ClientConfigStore, error) {
			return configstore.NewRemote(cc)
		}, []string{v2Meta, v2Pub, v1Meta, v1Pub}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			rec, cc := newMDRecorder(t)
			store, err := s.new(cc)
			require.NoError(t, err)
			_, err = store.GetClientConfig(callerContext(t))
			require.Error(t, err, "the recorder serves nothing")
			requireNoCallerMetadata(t, rec.take(), s.methods...)
		})
	}
}

// The same through a server that answers, for Flyte 1 (the fake
// FlyteAdmin records the metadata of its AuthMetadataService calls).
func TestRemoteSendsNoCallerMetadataToFlyteAdmin(t *testing.T) {
	srv, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	_, err := r.GetClientConfig(callerContext(t))
	require.NoError(t, err)
	headers := srv.MetadataRPCHeaders()
	require.Len(t, headers, 2)
	for _, md := range headers {
		for _, k := range []string{"authorization", "x-tenant", "x-appended"} {
			assert.Empty(t, md.Get(k), "an AuthMetadataService call carried the caller's %s header", k)
		}
	}
	assert.False(t, srv.MetadataRPCsSawToken())
}

// The same for Flyte 2, through its connect-go fake, which reports any
// call that carried a bearer credential.
func TestFlyte2RemoteSendsNoCallerMetadata(t *testing.T) {
	srv, cc, _ := newFlyte2Server(t, false, testserver.WithFlyte2Metadata(flyte2Metadata), testserver.WithFlyte2PublicConfig(flyte2Public))
	for _, newStore := range []func() (configstore.ClientConfigStore, error){
		func() (configstore.ClientConfigStore, error) {
			return configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte2))
		},
		func() (configstore.ClientConfigStore, error) { return configstore.NewRemote(cc) },
	} {
		store, err := newStore()
		require.NoError(t, err)
		_, err = store.GetClientConfig(callerContext(t))
		require.NoError(t, err)
	}
	assert.False(t, srv.MetadataRPCsSawToken(), "an AuthMetadataService call carried the caller's bearer token")
}
