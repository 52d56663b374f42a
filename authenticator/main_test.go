package authenticator_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/cachechild"
	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(cachechild.Env); spec != "" {
		os.Exit(cachechild.Main(spec)) // a process of TestProcessesSharingOneCache
	}
	goleak.VerifyTestMain(m)
}

const (
	testEndpoint = "dns:///admin.example:443"
	// testClientID and testSecret hold characters that form-url-encoding
	// changes, so the tests see whether the Basic header encodes them.
	testClientID = "client id@example"
	testSecret   = "s3cr3t+/:%&=with spaces inside"

	// waitFor bounds every wait for an event; it is a deadline, never
	// something a test measures.
	waitFor = 10 * time.Second
	pollAt  = 5 * time.Millisecond
)

// secretForms are the ways testSecret could leak: as is, form-url-encoded,
// and inside the Basic header.
func secretForms() []string {
	enc := url.QueryEscape(testClientID) + ":" + url.QueryEscape(testSecret)
	return []string{testSecret, url.QueryEscape(testSecret), base64.StdEncoding.EncodeToString([]byte(enc))}
}

// requireNoSecret fails if s contains the client secret in any form.
func requireNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, form := range secretForms() {
		require.NotContains(t, s, form, "the client secret leaked")
	}
}

// newFakeClock returns a settable clock for the token server and the
// authenticator to share.
func newFakeClock() *testserver.Clock {
	return testserver.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// fakeStore is a ClientConfigStore whose answer can change between calls
// and that counts them. It is safe for concurrent use.
type fakeStore struct {
	calls atomic.Int64

	mu  sync.Mutex // guards cfg and err
	cfg configstore.ClientConfig
	err error
}

func newFakeStore(cfg configstore.ClientConfig) *fakeStore { return &fakeStore{cfg: cfg} }

func (s *fakeStore) GetClientConfig(ctx context.Context) (*configstore.ClientConfig, error) {
	s.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.cfg.Clone(), nil
}

func (s *fakeStore) SetTokenEndpoint(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.TokenEndpoint = u
}

func (s *fakeStore) SetError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// newTokenServer starts a token server that knows testClientID with
// testSecret (unless opts register other clients) and closes it at the end
// of the test.
func newTokenServer(t *testing.T, opts ...testserver.TokenOption) *testserver.TokenServer {
	t.Helper()
	ts, err := testserver.NewTokenServer(opts...)
	require.NoError(t, err)
	t.Cleanup(ts.Close)
	return ts
}

// newDefaultTokenServer is newTokenServer with testClientID registered.
func newDefaultTokenServer(t *testing.T, opts ...testserver.TokenOption) *testserver.TokenServer {
	t.Helper()
	return newTokenServer(t, append([]testserver.TokenOption{testserver.WithClient(testClientID, testSecret)}, opts...)...)
}

// newAuth builds an authenticator for testClientID and testSecret.
func newAuth(t *testing.T, store configstore.ClientConfigStore, opts ...authenticator.Option) *authenticator.Keeper {
	t.Helper()
	a, err := authenticator.NewClientCredentialsAuthenticator(testEndpoint, testClientID, testSecret, store, opts...)
	require.NoError(t, err)
	return a
}

// newAuthWithSecret builds a Keeper for testClientID whose secret comes
// from src at every token request: ClientCredentials with New, as
// grpcauth.New builds one for a Flyte clientSecretLocation or
// clientSecretEnvVar.
func newAuthWithSecret(t *testing.T, store configstore.ClientConfigStore, src authenticator.SecretSource, opts ...authenticator.Option) *authenticator.Keeper {
	t.Helper()
	flow, err := authenticator.ClientCredentials(testClientID, src)
	require.NoError(t, err)
	a, err := authenticator.New(testEndpoint, store, flow, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// staticFor is a static store that advertises ts's token endpoint.
func staticFor(ts *testserver.TokenServer) configstore.ClientConfigStore {
	return configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: ts.TokenURL()})
}

// currentValue returns the value FetchGRPCCallAuthMetadata gives, failing
// when it has none.
func currentValue(t *testing.T, a authenticator.Authenticator) string {
	t.Helper()
	_, v, ok := credOK(a.Credential(context.Background()))
	require.True(t, ok, "no credentials held")
	return v
}

// accessToken is the token inside a "Bearer <token>" value.
func accessToken(t *testing.T, value string) string {
	t.Helper()
	tok, ok := strings.CutPrefix(value, "Bearer ")
	require.True(t, ok, "the value is not a Bearer credential")
	require.NotEmpty(t, tok)
	return tok
}

// basicCredentials decodes a Basic Authorization header into its raw
// (still form-url-encoded) id and secret.
func basicCredentials(t *testing.T, header string) (id, secret string) {
	t.Helper()
	enc, ok := strings.CutPrefix(header, "Basic ")
	require.True(t, ok, "not a Basic header: %q", header)
	raw, err := base64.StdEncoding.DecodeString(enc)
	require.NoError(t, err)
	id, secret, ok = strings.Cut(string(raw), ":")
	require.True(t, ok, "no colon in the Basic credentials")
	return id, secret
}

// gate is a Fault that holds every token request until Open is called,
// so a test decides when a flight may end.
type gate struct {
	open chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) Fault() testserver.Fault {
	return func(_ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
		return false
	}
}

func (g *gate) Open() { g.once.Do(func() { close(g.open) }) }

// joinProbe is a context that calls joined the first time its Done method
// is called. The authenticator asks for Done only once the caller is
// waiting on a flight's result, so joined says "this caller has joined".
type joinProbe struct {
	context.Context
	once   sync.Once
	joined func()
}

func probe(ctx context.Context, joined func()) *joinProbe {
	return &joinProbe{Context: ctx, joined: joined}
}

func (p *joinProbe) Done() <-chan struct{} {
	p.once.Do(p.joined)
	return p.Context.Done()
}

// waitGroupWithin waits for wg, failing the test after waitFor.
func waitGroupWithin(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// receiveWithin receives from ch, failing the test after waitFor.
func receiveWithin[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// newAdmin starts a fake FlyteAdmin on bufconn whose AuthMetadataService
// advertises ts's token endpoint, and closes it at the end of the test.
func newAdmin(t *testing.T, ts *testserver.TokenServer) *testserver.AdminServer {
	t.Helper()
	admin, err := testserver.NewAdminServer(
		testserver.WithBufconn(),
		testserver.WithValidator(ts),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: ts.TokenURL()}),
	)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	return admin
}

// newRemote dials admin and returns a Remote store over that connection,
// which is closed at the end of the test.
func newRemote(t *testing.T, admin *testserver.AdminServer) configstore.ClientConfigStore {
	t.Helper()
	conn, err := grpc.NewClient(admin.Addr(), admin.DialOptions()...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	store, err := configstore.NewRemote(conn)
	require.NoError(t, err)
	return store
}

// newCA generates a throwaway certificate authority.
func newCA(t *testing.T) *testserver.CA {
	t.Helper()
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	return ca
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// credOK is Credential as the (key, value, ok) of a test that only asks
// whether a credential is at hand.
func credOK(key, value string, err error) (string, string, bool) { return key, value, err == nil }

// httpVia makes token requests through a client built from s, as
// grpcauth.New builds it from a Flyte config.
func httpVia(t testing.TB, s netconf.Settings) authenticator.Option {
	t.Helper()
	tr, err := s.Transport()
	require.NoError(t, err)
	return authenticator.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: netconf.NoRedirects})
}
