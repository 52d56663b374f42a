package connectauth_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// http1Front is an ingress that speaks only HTTP/1.1 over TLS (ALPN
// http/1.1), as the one in front of a Flyte 2 deployment may: it passes
// every request on to the Flyte 2 fake and counts them.
type http1Front struct {
	addr     string
	requests atomic.Int64
}

func newHTTP1Front(t *testing.T, backend *testserver.ConnectServer) (front *http1Front, caFile string) {
	t.Helper()
	target, err := url.Parse(backend.URL())
	require.NoError(t, err)
	f := &http1Front{}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: backend.HTTPClient().Transport,
	}
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	srv.TLS, err = ca.ServerTLSConfig()
	require.NoError(t, err)
	srv.TLS.NextProtos = []string{"http/1.1"}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.addr = srv.Listener.Addr().String()
	caFile, err = ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)
	return f, caFile
}

// TestNewThroughAnHTTP1OnlyIngress: behind an ingress that speaks only
// HTTP/1.1, the metadata lookup and the calls go over the Connect
// protocol, which needs no HTTP/2; gRPC (HTTP/2) is never tried.
func TestNewThroughAnHTTP1OnlyIngress(t *testing.T) {
	for _, ask := range []string{"asks AuthMetadataService", "the config names it all"} {
		t.Run(ask, func(t *testing.T) {
			r := newFlyte2Rig(t, false)
			front, caFile := newHTTP1Front(t, r.srv)
			cfg := r.cfg
			cfg.Endpoint, cfg.CACertFilePath = front.addr, caFile
			if ask == "the config names it all" {
				cfg.TokenURL, cfg.Scopes, cfg.AuthorizationHeader = r.tokens.TokenURL(), []string{"all"}, "authorization"
			}
			c := newClient(t, cfg)
			for range 2 {
				resp, err := epEcho(c).Echo(ctx(t), req("over HTTP/1.1"))
				require.NoError(t, err)
				assert.Equal(t, "over HTTP/1.1", resp.Msg.GetValue())
			}
			oauth2Calls, publicCalls := r.srv.MetadataCalls()
			if ask == "the config names it all" {
				assert.Equal(t, [2]int64{0, 0}, [2]int64{oauth2Calls, publicCalls}, "nothing asked")
			} else {
				assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth2Calls, publicCalls}, "asked once, over the Connect protocol")
			}
			assert.EqualValues(t, 1, r.tokens.Issued())
			assert.Equal(t, oauth2Calls+publicCalls+2, front.requests.Load(), "every request went through the front")
			assert.False(t, r.srv.MetadataRPCsSawToken())
		})
	}
}

// TestMetadataOverConnectFallsBackToFlyte1: FlyteAdmin (grpc-go) does
// not serve Flyte 2's service to the Connect protocol; a connect client
// then asks Flyte 1's over gRPC, once.
func TestMetadataOverConnectFallsBackToFlyte1(t *testing.T) {
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	admin, err := testserver.NewAdminServer(testserver.WithAdminTLS(ca), testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	caFile, err := ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)
	c := newClient(t, grpcauth.Config{Endpoint: admin.Addr(), CACertFilePath: caFile, ClientID: clientID, ClientSecret: clientSecret})
	for range 2 {
		_, err = c.Authenticator.Token(ctx(t))
		require.NoError(t, err)
	}
	oauth2Calls, publicCalls := admin.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth2Calls, publicCalls}, "Flyte 1's service, asked once")
	assert.EqualValues(t, 1, tokens.Issued())
}
