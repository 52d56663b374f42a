package configstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
)

var (
	flyte2Metadata = &flyte2pb.GetOAuth2MetadataResponse{
		Issuer:                      "https://idp",
		AuthorizationEndpoint:       "https://idp/authorize",
		TokenEndpoint:               "https://idp/token",
		DeviceAuthorizationEndpoint: "https://idp/device",
	}
	flyte2Public = &flyte2pb.GetPublicClientConfigResponse{
		ClientId:                 "flytectl",
		RedirectUri:              "http://localhost:53593/callback",
		Scopes:                   []string{"offline", "all"},
		AuthorizationMetadataKey: "flyte-authorization",
		ServiceHttpEndpoint:      "https://flyte",
		Audience:                 "https://aud",
		DataplaneDomain:          "dp.flyte",
	}
	flyte2Want = &configstore.ClientConfig{
		Issuer:                      "https://idp",
		TokenEndpoint:               "https://idp/token",
		AuthorizationEndpoint:       "https://idp/authorize",
		DeviceAuthorizationEndpoint: "https://idp/device",
		RedirectURI:                 "http://localhost:53593/callback",
		ClientID:                    "flytectl",
		Scopes:                      []string{"offline", "all"},
		HeaderKey:                   "flyte-authorization",
		Audience:                    "https://aud",
		ServiceHTTPEndpoint:         "https://flyte",
		DataplaneDomain:             "dp.flyte",
	}
)

// methodLog records the gRPC methods a connection called.
type methodLog struct {
	mu      sync.Mutex
	methods []string
}

func (l *methodLog) interceptor() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		l.mu.Lock()
		l.methods = append(l.methods, method)
		l.mu.Unlock()
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

// take returns the methods called since the last take, sorted by first
// appearance, with their counts.
func (l *methodLog) take() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, m := range l.methods {
		out[m]++
	}
	l.methods = nil
	return out
}

// newFlyte2Server starts a connect-go Flyte 2 fake and returns it with a
// grpc-go connection to it whose calls are logged.
func newFlyte2Server(t *testing.T, tls bool, opts ...testserver.ConnectOption) (*testserver.ConnectServer, *grpc.ClientConn, *methodLog) {
	t.Helper()
	if tls {
		ca, err := testserver.NewCA()
		require.NoError(t, err)
		opts = append(opts, testserver.WithConnectTLS(ca))
	}
	srv, err := testserver.NewConnectServer(opts...)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	log := new(methodLog)
	cc, err := grpc.NewClient(srv.Addr(), append(srv.GRPCDialOptions(), log.interceptor())...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return srv, cc, log
}

func TestFlyte2RemoteMapsBothRPCs(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "tls"}[tls], func(t *testing.T) {
			srv, cc, log := newFlyte2Server(t, tls, testserver.WithFlyte2Metadata(flyte2Metadata), testserver.WithFlyte2PublicConfig(flyte2Public))
			r, err := configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte2))
			require.NoError(t, err)
			got, err := r.GetClientConfig(t.Context())
			require.NoError(t, err)
			assert.Equal(t, flyte2Want, got)
			assert.Equal(t, map[string]int{
				"/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata":     1,
				"/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig": 1,
			}, log.take())

			again, err := r.GetClientConfig(t.Context())
			require.NoError(t, err)
			assert.Equal(t, got, again)
			o, p := srv.MetadataCalls()
			assert.Equal(t, [2]int64{1, 1}, [2]int64{o, p}, "the answer is cached")
			assert.False(t, srv.MetadataRPCsSawToken())
		})
	}
}

func TestFlyte2RemoteNoIdentityProvider(t *testing.T) {
	srv, cc, _ := newFlyte2Server(t, false, testserver.WithFlyte2PublicConfig(flyte2Public))
	srv.SetOAuth2MetadataError(connect.NewError(connect.CodeUnimplemented, nil))
	r, err := configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte2))
	require.NoError(t, err)
	_, err = r.GetClientConfig(t.Context())
	require.ErrorIs(t, err, configstore.ErrNoIdentityProvider)
	assert.Equal(t, codes.Unimplemented, status.Code(err))
	assert.Contains(t, err.Error(), "admin.tokenUrl", "the error names the key to set")
	assert.Contains(t, err.Error(), "NewDiscovery")

	// Not cached: once the server has an IdP, the next call succeeds.
	srv.SetOAuth2MetadataError(nil)
	srv.SetOAuth2Metadata(flyte2Metadata)
	got, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, flyte2Want, got)
}

func TestFlyte2RemoteAllowMissingTokenEndpoint(t *testing.T) {
	srv, cc, _ := newFlyte2Server(t, false, testserver.WithFlyte2PublicConfig(flyte2Public))
	srv.SetOAuth2MetadataError(connect.NewError(connect.CodeUnimplemented, nil))
	r, err := configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte2), configstore.AllowMissingTokenEndpoint())
	require.NoError(t, err)
	got, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	want := flyte2Want.Clone()
	want.Issuer, want.TokenEndpoint, want.AuthorizationEndpoint, want.DeviceAuthorizationEndpoint = "", "", "", ""
	assert.Equal(t, want, got)
}

func TestFlyte2RemoteErrors(t *testing.T) {
	_, err := configstore.NewRemote(nil, configstore.WithService(configstore.ServiceFlyte2))
	require.Error(t, err)

	srv, cc, _ := newFlyte2Server(t, false, testserver.WithFlyte2PublicConfig(flyte2Public))
	srv.SetOAuth2MetadataError(connect.NewError(connect.CodeUnavailable, nil))
	r, err := configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte2))
	require.NoError(t, err)
	_, err = r.GetClientConfig(t.Context())
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.NotErrorIs(t, err, configstore.ErrNoIdentityProvider)

	srv.SetOAuth2MetadataError(nil)
	srv.SetOAuth2Metadata(&flyte2pb.GetOAuth2MetadataResponse{TokenEndpoint: "not a url"})
	_, err = r.GetClientConfig(t.Context())
	assert.ErrorIs(t, err, configstore.ErrInvalidMetadata)
}

func TestFlyte2RemoteSingleFlight(t *testing.T) {
	srv, cc, _ := newFlyte2Server(t, false, testserver.WithFlyte2Metadata(flyte2Metadata), testserver.WithFlyte2PublicConfig(flyte2Public))
	r, err := configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte2))
	require.NoError(t, err)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 50 {
		wg.Go(func() {
			if _, err := r.GetClientConfig(t.Context()); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load())
	o, p := srv.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{o, p})
}
