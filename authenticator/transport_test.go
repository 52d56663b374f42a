package authenticator_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// forwardProxy is a loopback HTTP forward proxy: it records the
// absolute-form request line of each request and passes the request on to
// the host it names.
type forwardProxy struct {
	srv *httptest.Server
	tr  *http.Transport

	mu   sync.Mutex // guards seen
	seen []proxiedRequest
}

type proxiedRequest struct {
	method, requestURI string
	hadAuthorization   bool
}

func newForwardProxy(t *testing.T) *forwardProxy {
	t.Helper()
	p := &forwardProxy{tr: &http.Transport{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// A forward proxy gets the absolute URL: send it where it points.
			pr.Out.URL.Scheme = pr.In.URL.Scheme
			pr.Out.URL.Host = pr.In.URL.Host
			pr.Out.Host = pr.In.Host
		},
		Transport: p.tr,
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, proxiedRequest{
			method:           r.Method,
			requestURI:       r.RequestURI,
			hadAuthorization: r.Header.Get("Authorization") != "",
		})
		p.mu.Unlock()
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.srv.Close()
		p.tr.CloseIdleConnections()
	})
	return p
}

func (p *forwardProxy) Seen() []proxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxiedRequest(nil), p.seen...)
}

func TestProxyURLIsUsed(t *testing.T) {
	ts := newDefaultTokenServer(t)
	proxy := newForwardProxy(t)
	a := newAuth(t, staticFor(ts), httpVia(t, netconf.Settings{ProxyURL: proxy.srv.URL}))

	require.NoError(t, a.RefreshCredentials(context.Background()))

	assert.Equal(t, []proxiedRequest{{method: http.MethodPost, requestURI: ts.TokenURL(), hadAuthorization: true}}, proxy.Seen(),
		"the token request went through the proxy, in absolute form")
	assert.EqualValues(t, 1, ts.Issued())
	_, err := ts.Validate(context.Background(), accessToken(t, currentValue(t, a)))
	require.NoError(t, err)
}

func TestTLSTokenEndpoint(t *testing.T) {
	ca := newCA(t)
	ts := newDefaultTokenServer(t, testserver.WithTokenTLS(ca))
	caFile, err := ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)
	otherCAFile, err := newCA(t).WriteCertFile(t.TempDir())
	require.NoError(t, err)

	tests := []struct {
		name    string
		opts    []authenticator.Option
		wantErr string
	}{
		{name: "unknown CA", wantErr: "certificate"},
		{name: "another CA", opts: []authenticator.Option{httpVia(t, netconf.Settings{CAFile: otherCAFile})}, wantErr: "certificate"},
		{name: "CA file", opts: []authenticator.Option{httpVia(t, netconf.Settings{CAFile: caFile})}},
		{name: "skip verify", opts: []authenticator.Option{httpVia(t, netconf.Settings{SkipVerify: true})}},
		{name: "caller's HTTP client", opts: []authenticator.Option{authenticator.WithHTTPClient(ts.HTTPClient())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.ResetCounters()
			a := newAuth(t, staticFor(ts), tt.opts...)
			err := a.RefreshCredentials(context.Background())
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				var te *authenticator.TokenError
				require.ErrorAs(t, err, &te)
				assert.Zero(t, te.StatusCode, "no answer came")
				assert.Zero(t, ts.Issued())
				requireNoSecret(t, err.Error())
				return
			}
			require.NoError(t, err)
			assert.EqualValues(t, 1, ts.Issued())
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	ts := newDefaultTokenServer(t)
	elsewhere := newDefaultTokenServer(t)
	ts.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, elsewhere.TokenURL(), http.StatusTemporaryRedirect)
		return true
	})
	a := newAuth(t, staticFor(ts))

	err := a.RefreshCredentials(context.Background())
	require.Error(t, err)
	var te *authenticator.TokenError
	require.True(t, errors.As(err, &te))
	assert.Equal(t, http.StatusTemporaryRedirect, te.StatusCode)
	assert.Zero(t, elsewhere.Requests(), "the credentials never reach the redirect target")
	requireNoSecret(t, err.Error())
}
