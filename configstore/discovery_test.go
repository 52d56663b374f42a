package configstore_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
)

const discoveryDoc = `{
  "issuer": "https://idp.example",
  "authorization_endpoint": "https://idp.example/authorize",
  "token_endpoint": "https://idp.example/token",
  "device_authorization_endpoint": "https://idp.example/device",
  "scopes_supported": ["openid", "offline"],
  "grant_types_supported": ["client_credentials"]
}`

var discoveryWant = &configstore.ClientConfig{
	TokenEndpoint:               "https://idp.example/token",
	AuthorizationEndpoint:       "https://idp.example/authorize",
	DeviceAuthorizationEndpoint: "https://idp.example/device",
}

// docServer serves body at the given paths (404 elsewhere) and counts
// requests by path.
type docServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths map[string]string // path -> body
	hits  map[string]int
	ctype string
	// issuer replaces discoveryDoc's issuer in the answers: the server's
	// own URL plus issuerPath, as a real server names itself.
	issuerPath string
}

func newDocServer(t *testing.T, tls bool, paths map[string]string) *docServer {
	t.Helper()
	d := &docServer{paths: paths, hits: map[string]int{}, ctype: "application/json"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.hits[r.URL.Path]++
		body, ok := d.paths[r.URL.Path]
		ctype := d.ctype
		body = strings.Replace(body, `"issuer": "https://idp.example"`, `"issuer": "`+d.URL+d.issuerPath+`"`, 1)
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write([]byte(body))
	})
	if tls {
		d.Server = httptest.NewTLSServer(h)
	} else {
		d.Server = httptest.NewServer(h)
	}
	t.Cleanup(d.Close)
	return d
}

func (d *docServer) hitsOf(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits[path]
}

func TestDiscoveryReadsRFC8414Document(t *testing.T) {
	d := newDocServer(t, true, map[string]string{"/.well-known/oauth-authorization-server": discoveryDoc})
	s, err := configstore.NewDiscovery(d.URL, configstore.WithHTTPClient(d.Client()))
	require.NoError(t, err)
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, issuedBy(discoveryWant, d.URL), got, "scopes_supported is not what to ask for")
	_, err = s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, d.hitsOf("/.well-known/oauth-authorization-server"), "cached")
	assert.Equal(t, 0, d.hitsOf("/.well-known/openid-configuration"))
}

// Servers such as ORY Hydra serve only OpenID Connect's document.
func TestDiscoveryFallsBackToOpenIDConfiguration(t *testing.T) {
	d := newDocServer(t, true, map[string]string{"/.well-known/openid-configuration": discoveryDoc})
	s, err := configstore.NewDiscovery(d.URL+"/", configstore.WithHTTPClient(d.Client()))
	require.NoError(t, err)
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, issuedBy(discoveryWant, d.URL), got)
	assert.Equal(t, 1, d.hitsOf("/.well-known/oauth-authorization-server"))
	assert.Equal(t, 1, d.hitsOf("/.well-known/openid-configuration"))
}

func TestDiscoveryIssuerWithPath(t *testing.T) {
	d := newDocServer(t, false, map[string]string{
		"/.well-known/oauth-authorization-server" + "/tenant": discoveryDoc,
	})
	d.issuerPath = "/tenant"
	s, err := configstore.NewDiscovery(d.URL + "/tenant")
	require.NoError(t, err)
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, issuedBy(discoveryWant, d.URL+"/tenant"), got)

	d2 := newDocServer(t, false, map[string]string{"/tenant" + "/.well-known/openid-configuration": discoveryDoc})
	d2.issuerPath = "/tenant"
	s2, err := configstore.NewDiscovery(d2.URL + "/tenant")
	require.NoError(t, err)
	_, err = s2.GetClientConfig(t.Context())
	require.NoError(t, err)

	// A document URL is read as it is, and only it.
	d3 := newDocServer(t, false, map[string]string{"/custom/.well-known/metadata.json": discoveryDoc})
	d3.issuerPath = "/custom"
	s3, err := configstore.NewDiscovery(d3.URL + "/custom/.well-known/metadata.json")
	require.NoError(t, err)
	_, err = s3.GetClientConfig(t.Context())
	require.NoError(t, err)
}

// The connect-go Flyte 2 fake serves its metadata at the RFC 8414 path.
func TestDiscoveryAgainstFlyte2Server(t *testing.T) {
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	srv, err := testserver.NewConnectServer(testserver.WithConnectTLS(ca), testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{
		Issuer: "https://idp.example", TokenEndpoint: "https://idp.example/token", AuthorizationEndpoint: "https://idp.example/authorize",
	}))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	s, err := configstore.NewDiscovery(srv.URL(), configstore.WithHTTPClient(srv.HTTPClient()), configstore.WithRepublishedMetadata())
	require.NoError(t, err)
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, &configstore.ClientConfig{Issuer: "https://idp.example", TokenEndpoint: "https://idp.example/token", AuthorizationEndpoint: "https://idp.example/authorize"}, got)
	assert.Equal(t, int64(1), srv.WellKnownCalls())
}

func TestDiscoveryNeverCachesFailure(t *testing.T) {
	d := newDocServer(t, false, map[string]string{})
	s, err := configstore.NewDiscovery(d.URL)
	require.NoError(t, err)
	_, err = s.GetClientConfig(t.Context())
	require.ErrorContains(t, err, "answered 404")
	assert.Contains(t, err.Error(), "/.well-known/oauth-authorization-server")
	assert.Contains(t, err.Error(), "/.well-known/openid-configuration")

	d.mu.Lock()
	d.paths["/.well-known/oauth-authorization-server"] = discoveryDoc
	d.mu.Unlock()
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, issuedBy(discoveryWant, d.URL), got)
}

func TestDiscoverySingleFlight(t *testing.T) {
	d := newDocServer(t, false, map[string]string{"/.well-known/oauth-authorization-server": discoveryDoc})
	s, err := configstore.NewDiscovery(d.URL)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 50 {
		wg.Go(func() {
			if _, err := s.GetClientConfig(t.Context()); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load())
	assert.Equal(t, 1, d.hitsOf("/.well-known/oauth-authorization-server"))
}

func TestDiscoveryBadDocuments(t *testing.T) {
	big := `{"token_endpoint":"https://idp/token","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	for name, tc := range map[string]struct {
		body, ctype, want string
		opts              []configstore.Option
	}{
		"not json":       {body: "<html>", want: "not a JSON metadata document"},
		"html type":      {body: discoveryDoc, ctype: "text/html", want: "is not JSON"},
		"no token":       {body: `{"issuer":"x"}`, want: "token_endpoint is empty"},
		"relative token": {body: `{"token_endpoint":"/token"}`, want: "not an absolute http(s) URL"},
		"too big":        {body: big, want: "larger than 1048576 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			d := newDocServer(t, false, map[string]string{"/.well-known/oauth-authorization-server": tc.body})
			if tc.ctype != "" {
				d.ctype = tc.ctype
			}
			s, err := configstore.NewDiscovery(d.URL, tc.opts...)
			require.NoError(t, err)
			_, err = s.GetClientConfig(t.Context())
			require.ErrorIs(t, err, configstore.ErrInvalidMetadata)
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, len(err.Error()), 1024)
		})
	}
}

func TestDiscoveryTransportRule(t *testing.T) {
	for _, bad := range []string{"", "idp.example", "ftp://idp.example", "https://", "https://idp.example/?x=1", "https://user:pw@idp.example"} {
		_, err := configstore.NewDiscovery(bad)
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), "pw", "no credentials in errors")
	}
	_, err := configstore.NewDiscovery("http://idp.example")
	require.ErrorContains(t, err, "allow plaintext explicitly")
	for _, ok := range []string{"https://idp.example", "http://localhost:8080", "http://127.0.0.1:1", "http://[::1]:1"} {
		_, err := configstore.NewDiscovery(ok)
		require.NoError(t, err, ok)
	}
	_, err = configstore.NewDiscovery("http://idp.example", configstore.WithInsecure())
	require.NoError(t, err)

	// A redirect to plain HTTP on a host that is not loopback is refused.
	target := "http://idp.example" + "/.well-known/oauth-authorization-server"
	d := httptest.NewTLSServer(http.RedirectHandler(target, http.StatusFound))
	t.Cleanup(d.Close)
	s, err := configstore.NewDiscovery(d.URL, configstore.WithHTTPClient(d.Client()))
	require.NoError(t, err)
	_, err = s.GetClientConfig(t.Context())
	require.ErrorContains(t, err, "redirected")
}

// A document whose issuer is not the one it was fetched for is refused
// (RFC 8414 §3.3), unless it is declared republished (issue 23, item 3).
func TestDiscoveryChecksTheIssuer(t *testing.T) {
	d := newDocServer(t, false, map[string]string{"/.well-known/oauth-authorization-server": discoveryDoc})
	d.issuerPath = "/someone-else"
	s, err := configstore.NewDiscovery(d.URL)
	require.NoError(t, err)
	_, err = s.GetClientConfig(t.Context())
	require.ErrorIs(t, err, configstore.ErrInvalidMetadata)
	assert.Contains(t, err.Error(), "issuer")
	assert.Contains(t, err.Error(), "WithRepublishedMetadata")

	s, err = configstore.NewDiscovery(d.URL, configstore.WithRepublishedMetadata())
	require.NoError(t, err)
	_, err = s.GetClientConfig(t.Context())
	require.NoError(t, err)
}

// A redirect of the well-known path to another origin is not followed,
// even with a republished document (issue 23, item 3).
func TestDiscoveryRefusesCrossOriginRedirects(t *testing.T) {
	other := newDocServer(t, false, map[string]string{"/.well-known/oauth-authorization-server": discoveryDoc})
	front := httptest.NewServer(http.RedirectHandler(other.URL+"/.well-known/oauth-authorization-server", http.StatusFound))
	t.Cleanup(front.Close)
	s, err := configstore.NewDiscovery(front.URL, configstore.WithRepublishedMetadata())
	require.NoError(t, err)
	_, err = s.GetClientConfig(t.Context())
	require.ErrorContains(t, err, "another origin")
	assert.Zero(t, other.hitsOf("/.well-known/oauth-authorization-server"), "the other origin was asked")
}

// Flyte 2 writes its well-known document in proto3 JSON (camelCase keys),
// and answers HTTP 501 with the RPC's text when no identity provider is
// configured: the same "no identity provider" error as the RPC's
// Unimplemented.
func TestDiscoveryReadsFlyte2sDocumentAndItsNoIdentityProviderAnswer(t *testing.T) {
	srv, err := testserver.NewConnectServer(testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{
		Issuer: "https://idp.example", TokenEndpoint: "https://idp.example/token",
		AuthorizationEndpoint: "https://idp.example/authorize", DeviceAuthorizationEndpoint: "https://idp.example/device",
	}))
	require.NoError(t, err)
	t.Cleanup(srv.Close)

	resp, err := srv.HTTPClient().Get(srv.URL() + testserver.WellKnownPath)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Contains(t, string(raw), `"tokenEndpoint"`, "the fake writes what Flyte 2 writes")
	require.NotContains(t, string(raw), `"token_endpoint"`)

	s, err := configstore.NewDiscovery(srv.URL(), configstore.WithHTTPClient(srv.HTTPClient()), configstore.WithRepublishedMetadata())
	require.NoError(t, err)
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, &configstore.ClientConfig{
		Issuer:        "https://idp.example",
		TokenEndpoint: "https://idp.example/token", AuthorizationEndpoint: "https://idp.example/authorize",
		DeviceAuthorizationEndpoint: "https://idp.example/device",
	}, got)

	srv.SetOAuth2MetadataError(connect.NewError(connect.CodeUnimplemented,
		errors.New("oauth2 metadata is not configured; set runs.authMetadata.externalAuthServerBaseUrl")))
	s, err = configstore.NewDiscovery(srv.URL(), configstore.WithHTTPClient(srv.HTTPClient()), configstore.WithRepublishedMetadata())
	require.NoError(t, err)
	before := srv.WellKnownCalls()
	_, err = s.GetClientConfig(t.Context())
	require.ErrorIs(t, err, configstore.ErrNoIdentityProvider)
	assert.Contains(t, err.Error(), "HTTP 501")
	assert.Contains(t, err.Error(), "admin.tokenUrl", "the error says what to set")
	assert.Equal(t, int64(1), srv.WellKnownCalls()-before, "one request, not a search of the other paths")
}

// issuedBy is want with the issuer the document names.
func issuedBy(want *configstore.ClientConfig, issuer string) *configstore.ClientConfig {
	c := want.Clone()
	c.Issuer = issuer
	return c
}

// RFC 9207's authorization_response_iss_parameter_supported is read, with
// the issuer a browser login then compares the response's iss with.
func TestDiscoveryReadsTheIssParameterPromise(t *testing.T) {
	doc := strings.Replace(discoveryDoc, `"scopes_supported"`, `"authorization_response_iss_parameter_supported": true, "scopes_supported"`, 1)
	d := newDocServer(t, false, map[string]string{"/.well-known/oauth-authorization-server": doc})
	s, err := configstore.NewDiscovery(d.URL)
	require.NoError(t, err)
	got, err := s.GetClientConfig(t.Context())
	require.NoError(t, err)
	assert.True(t, got.IssuerInAuthorizationResponse)
	assert.Equal(t, d.URL, got.Issuer)
}
