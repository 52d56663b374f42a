package configstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	fullMetadata = &authmetapb.OAuth2MetadataResponse{
		Issuer:                      "https://idp",
		AuthorizationEndpoint:       "https://idp/authorize",
		TokenEndpoint:               "https://idp/token",
		DeviceAuthorizationEndpoint: "https://idp/device",
	}
	fullPublic = &authmetapb.PublicClientAuthConfigResponse{
		ClientId:                 "flytectl",
		RedirectUri:              "http://localhost:53593/callback",
		Scopes:                   []string{"offline", "all"},
		AuthorizationMetadataKey: "flyte-authorization",
		ServiceHttpEndpoint:      "https://admin",
		Audience:                 "https://aud",
	}
)

// newRemote starts an admin server and returns a Remote on a connection
// to it.
func newRemote(t *testing.T, opts ...testserver.AdminOption) (*testserver.AdminServer, configstore.ClientConfigStore) {
	t.Helper()
	srv, err := testserver.NewAdminServer(opts...)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	cc, err := grpc.NewClient(srv.Addr(), srv.DialOptions()...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	r, err := configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte1))
	require.NoError(t, err)
	return srv, r
}

func TestRemoteMapsBothRPCs(t *testing.T) {
	_, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	got, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, &configstore.ClientConfig{
		Issuer:                      "https://idp",
		TokenEndpoint:               "https://idp/token",
		AuthorizationEndpoint:       "https://idp/authorize",
		DeviceAuthorizationEndpoint: "https://idp/device",
		RedirectURI:                 "http://localhost:53593/callback",
		ClientID:                    "flytectl",
		Scopes:                      []string{"offline", "all"},
		HeaderKey:                   "flyte-authorization",
		Audience:                    "https://aud",
		ServiceHTTPEndpoint:         "https://admin",
	}, got)
}

func TestRemoteEmptyHeaderKeyMeansNotSet(t *testing.T) {
	_, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{}))
	got, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Empty(t, got.HeaderKey)
	assert.Nil(t, got.Scopes)
}

func TestRemoteCachesAndSharesOneFetch(t *testing.T) {
	srv, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	srv.SetMetadataLatency(50 * time.Millisecond) // so the callers overlap

	const n = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			<-start
			c, err := r.GetClientConfig(t.Context())
			if err == nil && c.TokenEndpoint != "https://idp/token" {
				err = errors.New("wrong token endpoint")
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	meta, pub := srv.MetadataCalls()
	assert.Equal(t, int64(1), meta)
	assert.Equal(t, int64(1), pub)

	// Later callers are served from the cache.
	_, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	meta, pub = srv.MetadataCalls()
	assert.Equal(t, int64(1), meta)
	assert.Equal(t, int64(1), pub)
}

func TestRemoteReturnsCopies(t *testing.T) {
	_, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	a, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	a.Scopes[0] = "changed"
	a.TokenEndpoint = "changed"
	b, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "offline", b.Scopes[0])
	assert.Equal(t, "https://idp/token", b.TokenEndpoint)
}

func TestRemoteFailuresAreNotCached(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
	}{
		{"unavailable", status.Error(codes.Unavailable, "admin is down"), codes.Unavailable},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown service flyteidl.service.AuthMetadataService"), codes.Unimplemented},
		{"deadline", status.Error(codes.DeadlineExceeded, "too slow"), codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
			srv.SetMetadataError(tt.err)

			_, err := r.GetClientConfig(t.Context())
			require.Error(t, err)
			assert.Equal(t, tt.wantCode, status.Code(err), "the gRPC code is kept")
			assert.Regexp(t, `GetOAuth2Metadata|GetPublicClientConfig`, err.Error(), "the error names the RPC")

			srv.SetMetadataError(nil)
			got, err := r.GetClientConfig(t.Context())
			require.NoError(t, err, "the failure was cached")
			assert.Equal(t, "https://idp/token", got.TokenEndpoint)
		})
	}
}

func TestRemoteServerDownThenBack(t *testing.T) {
	srv, err := testserver.NewAdminServer(testserver.WithTCP(),
		testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	require.NoError(t, err)
	addr := srv.Addr()
	srv.Close()

	cc, err := grpc.NewClient(addr, srv.DialOptions()...)
	require.NoError(t, err)
	defer cc.Close()
	r, err := configstore.NewRemote(cc, configstore.WithService(configstore.ServiceFlyte1), configstore.WithTimeout(2*time.Second))
	require.NoError(t, err)

	_, err = r.GetClientConfig(t.Context())
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Regexp(t, `configstore: (GetOAuth2Metadata|GetPublicClientConfig)`, err.Error())

	// The server comes back on the same address: the next call succeeds.
	back, err := testserver.NewAdminServer(testserver.WithTCPAddr(addr),
		testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	if err != nil {
		t.Skipf("could not listen again on %s: %v", addr, err)
	}
	defer back.Close()
	require.Eventually(t, func() bool {
		c, err := r.GetClientConfig(t.Context())
		return err == nil && c.TokenEndpoint == "https://idp/token"
	}, 10*time.Second, 50*time.Millisecond)
}

func TestRemoteRejectsUnusableTokenEndpoint(t *testing.T) {
	for _, endpoint := range []string{"", "not a url", "/relative/token", "ftp://idp/token"} {
		t.Run(endpoint, func(t *testing.T) {
			_, r := newRemote(t, testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: endpoint}))
			_, err := r.GetClientConfig(t.Context())
			require.Error(t, err)
			assert.ErrorIs(t, err, configstore.ErrInvalidMetadata)
			assert.Contains(t, err.Error(), "token_endpoint")
		})
	}
}

func TestRemoteWaiterHonoursItsContext(t *testing.T) {
	srv, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	srv.SetMetadataLatency(300 * time.Millisecond)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.GetClientConfig(ctx)
	require.ErrorIs(t, err, context.Canceled)

	// The shared fetch was not cancelled with that caller: it completes
	// and serves the next one.
	got, err := r.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "https://idp/token", got.TokenEndpoint)
}

func TestNewRemoteRejectsNilConnection(t *testing.T) {
	_, err := configstore.NewRemote(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection is nil")
}

func TestStaticReturnsCopies(t *testing.T) {
	s := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "https://idp/token", Scopes: []string{"a"}})
	a, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	a.Scopes[0] = "changed"
	b, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, b.Scopes)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.GetClientConfig(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestRemotePrintsWithoutInternals(t *testing.T) {
	_, r := newRemote(t, testserver.WithOAuth2Metadata(fullMetadata), testserver.WithPublicClientConfig(fullPublic))
	// fmt reads no internals, so printing races with no fetch.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := r.GetClientConfig(t.Context())
		assert.NoError(t, err)
	}()
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		s := fmt.Sprintf(verb, r)
		assert.NotContains(t, s, "cache", verb)
		assert.NotContains(t, s, "logger", verb)
	}
	<-done
}

func TestInvalidTokenEndpointIsPrintedRedacted(t *testing.T) {
	_, r := newRemote(t, testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
		TokenEndpoint: "ftp://alice:hunter2@idp.example/token?key=s3cret",
	}))
	_, err := r.GetClientConfig(context.Background())
	require.ErrorIs(t, err, configstore.ErrInvalidMetadata)
	assert.Contains(t, err.Error(), "idp.example")
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestRemoteAsksOnlyForWhatIsMissing(t *testing.T) {
	admin, err := testserver.NewAdminServer(testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: "https://idp.example/token"}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{Scopes: []string{"all"}}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	cc, err := grpc.NewClient(admin.Addr(), admin.DialOptions()...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	only, err := configstore.NewRemote(cc, configstore.WithoutPublicClientConfig())
	require.NoError(t, err)
	cfg, err := only.GetClientConfig(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "https://idp.example/token", cfg.TokenEndpoint)
	assert.Empty(t, cfg.Scopes, "GetPublicClientConfig was not asked")
	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.Equal(t, [2]int64{1, 0}, [2]int64{oauth2Calls, publicCalls})

	_, err = configstore.NewRemote(cc, configstore.WithoutOAuth2Metadata(), configstore.WithoutPublicClientConfig())
	require.ErrorContains(t, err, "use NewStatic")
}
