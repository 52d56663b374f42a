package reliability_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/local"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
	"github.com/flyteauth/grpcauth/tokencache"
)

const (
	clientID = "reliability-client"
	// secret is the client secret of every test in this package: easy to
	// spot, and full of characters that form-url-encoding changes.
	secret = "S3cr3t-+/:%&= xyzzy"

	// callTimeout bounds every call unless a test says otherwise. It is a
	// deadline, never something a test measures.
	callTimeout = 15 * time.Second
	// hangGrace is how long past its deadline a call may take to return
	// before it counts as hung: generous, so a loaded CI machine passes.
	hangGrace = 5 * time.Second
)

// secretForms are the shapes in which the secret could leak: as is,
// form-url-encoded, inside the HTTP Basic header, and two fragments that no
// legitimate text contains.
func secretForms() []string {
	basic := url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)
	return []string{
		secret,
		url.QueryEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(basic)),
		"S3cr3t",
		"xyzzy",
	}
}

// rigConfig says how to build a rig. The zero value is the common case:
// TLS on bufconn, a plain-HTTP token endpoint advertised by
// AuthMetadataService, tokens valid for an hour.
type rigConfig struct {
	plaintext bool          // the admin server serves plaintext, not TLS
	tcp       bool          // the admin server listens on loopback TCP, not bufconn
	lifetime  time.Duration // token lifetime; 0 keeps the token server's default (1h)
	// tokenFront puts the token endpoint behind an HTTPS front whose
	// certificate can be swapped for one from an unknown CA.
	tokenFront bool
	// proxy sends token requests through a forward proxy that can be
	// stopped and started again on the same address.
	proxy bool
	// idpFront puts the token endpoint behind a plain HTTP front that can
	// be stopped and started again on the same address: an IdP outage.
	idpFront bool
	// localCreds dials with credentials/local instead of the admin
	// server's own options (needs plaintext and tcp).
	localCreds bool
	// device logs in with the device flow against a device server (the
	// person approves at once).
	device bool
	// proxyCommand puts the admin server behind an identity-aware proxy
	// whose credential a second Keeper holds, as proxyCommand does (needs
	// plaintext and tcp).
	proxyCommand bool
	// cache gives the Keeper a file token cache in a directory of its own.
	cache bool
	// secretSource, when set, replaces the constant secret.
	secretSource authenticator.SecretSource
	authOpts     []authenticator.Option
	storeOpts    []configstore.Option
	icptOpts     []interceptor.Option
}

// rig is the whole stack a user runs: a token server, an admin server whose
// echo service accepts only tokens that server issued, and a connection with
// both interceptors, whose authenticator learns the token endpoint from a
// configstore.Remote on that same connection.
type rig struct {
	tokens *testserver.TokenServer
	admin  *testserver.AdminServer
	ca     *testserver.CA // the admin server's, when it serves TLS
	valid  *validator
	auth   *authenticator.Keeper
	store  configstore.ClientConfigStore
	conn   *grpc.ClientConn
	echo   *testserver.EchoClient
	logs   *logSink
	front  *tlsFront   // nil unless rigConfig.tokenFront
	proxy  *switchable // nil unless rigConfig.proxy
	idp    *switchable // nil unless rigConfig.idpFront
	// tokenURL is the token endpoint the admin server advertises.
	tokenURL string
	// device and deviceURL are set with rigConfig.device.
	device    *testserver.DeviceServer
	deviceURL string
	// px and pxAuth are set with rigConfig.proxyCommand.
	px     *testserver.Proxy
	pxAuth *authenticator.Keeper
	// cache and cachePath are the token cache and the Keeper's file in
	// it, with rigConfig.cache.
	cache     *tokencache.File
	cachePath string

	closeOnce sync.Once
	closers   []func()
}

func newRig(t testing.TB, cfg rigConfig) *rig {
	t.Helper()
	r := &rig{logs: new(logSink)}
	t.Cleanup(r.close)

	tokOpts := []testserver.TokenOption{testserver.WithClient(clientID, secret)}
	if cfg.lifetime > 0 {
		tokOpts = append(tokOpts, testserver.WithLifetime(cfg.lifetime))
	}
	tokens, err := testserver.NewTokenServer(tokOpts...)
	require.NoError(t, err)
	r.tokens = tokens
	r.onClose(tokens.Close)
	r.valid = newValidator(tokens)
	r.tokenURL = tokens.TokenURL()

	var authOpts []authenticator.Option
	if cfg.tokenFront {
		r.front = newTLSFront(t, tokens.URL())
		r.onClose(r.front.close)
		r.tokenURL = r.front.url() + testserver.TokenPath
		authOpts = append(authOpts, httpVia(t, netconf.Settings{CAFile: r.front.caFile}))
	}
	if cfg.idpFront {
		r.idp = newReverseProxy(t, tokens.URL())
		r.onClose(r.idp.stop)
		r.tokenURL = "http://" + r.idp.addr + testserver.TokenPath
	}
	if cfg.proxy {
		r.proxy = newForwardProxy(t)
		r.onClose(r.proxy.stop)
		authOpts = append(authOpts, httpVia(t, netconf.Settings{ProxyURL: "http://" + r.proxy.addr}))
	}

	if cfg.device {
		r.withDevice(t)
	}
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	adminOpts := []testserver.AdminOption{
		testserver.WithValidator(r.valid),
		testserver.WithOAuth2Metadata(r.goodMetadata()),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{
			ClientId: clientID,
			Scopes:   []string{"all"},
		}),
	}
	if !cfg.plaintext {
		adminOpts = append(adminOpts, testserver.WithAdminTLS(ca))
		r.ca = ca
	}
	if cfg.tcp {
		adminOpts = append(adminOpts, testserver.WithTCP())
	}
	admin, err := testserver.NewAdminServer(adminOpts...)
	require.NoError(t, err)
	r.admin = admin
	r.onClose(admin.Close)

	logger := r.logs.logger()
	slot := new(connSlot)
	r.store, err = configstore.NewRemote(slot, append([]configstore.Option{configstore.WithLogger(logger)}, cfg.storeOpts...)...)
	require.NoError(t, err)

	authOpts = append(authOpts, authenticator.WithLogger(logger))
	src := cfg.secretSource
	if src == nil {
		src = authenticator.SecretFromValue(secret)
	}
	flow, err := authenticator.ClientCredentials(clientID, src)
	require.NoError(t, err)
	if cfg.device {
		flow = r.deviceFlow(t)
	}
	if cfg.cache {
		authOpts = append(authOpts, r.withCache(t))
	}
	r.auth, err = authenticator.New(admin.Addr(), r.store, flow, append(authOpts, cfg.authOpts...)...)
	require.NoError(t, err)
	r.onClose(func() { _ = r.auth.Close() })

	icpt := append([]interceptor.Option{interceptor.WithLogger(logger)}, cfg.icptOpts...)
	if cfg.proxyCommand {
		icpt = append(icpt, interceptor.WithInsecure()) // a plaintext front
	}
	dial := admin.DialOptions()
	if cfg.localCreds {
		require.True(t, cfg.plaintext && cfg.tcp, "local credentials need a plaintext TCP server")
		dial = []grpc.DialOption{grpc.WithTransportCredentials(local.NewCredentials())}
	}
	dial = append(dial,
		grpc.WithChainUnaryInterceptor(interceptor.UnaryClientInterceptor(r.auth, icpt...)),
		grpc.WithChainStreamInterceptor(interceptor.StreamClientInterceptor(r.auth, icpt...)),
	)
	target := admin.Addr()
	if cfg.proxyCommand {
		require.True(t, cfg.plaintext && cfg.tcp, "the proxy fronts a plaintext TCP server")
		target = r.withProxyCommand(t)
		// Inside the OAuth2 interceptors: they see the proxy's refusals first.
		dial = append(dial,
			grpc.WithChainUnaryInterceptor(interceptor.ProxyUnaryClientInterceptor(r.pxAuth, icpt...)),
			grpc.WithChainStreamInterceptor(interceptor.ProxyStreamClientInterceptor(r.pxAuth, icpt...)),
		)
	}
	r.conn, err = grpc.NewClient(target, dial...)
	require.NoError(t, err)
	r.onClose(func() { _ = r.conn.Close() })
	slot.cc.Store(r.conn)
	r.echo = testserver.NewEchoClient(r.conn)
	if cfg.cache {
		r.noteCachePath(t)
	}
	return r
}

// onClose adds f to what close runs; the last added runs first.
func (r *rig) onClose(f func()) { r.closers = append(r.closers, f) }

// close stops everything the rig started. It may be called more than once.
func (r *rig) close() {
	r.closeOnce.Do(func() {
		for _, f := range slices.Backward(r.closers) {
			f()
		}
	})
}

// goodMetadata is what AuthMetadataService answers when nothing is broken.
func (r *rig) goodMetadata() *authmetapb.OAuth2MetadataResponse {
	if r.device != nil {
		return &authmetapb.OAuth2MetadataResponse{
			Issuer:                      r.device.URL(),
			TokenEndpoint:               r.device.TokenURL(),
			DeviceAuthorizationEndpoint: r.deviceURL,
		}
	}
	return &authmetapb.OAuth2MetadataResponse{
		Issuer:        r.tokens.URL(),
		TokenEndpoint: r.tokenURL,
	}
}

// revokeAll revokes every token issued so far, by the token server and by
// faults.
func (r *rig) revokeAll() {
	r.tokens.RevokeAll()
	r.valid.revokeAll()
	if r.device != nil {
		r.device.RevokeRefreshTokens()
	}
}

// tokensSeen returns every access token the client was seen to hold: those
// the admin server was shown and the authenticator's current one.
func (r *rig) tokensSeen(ctx context.Context) []string {
	seen := r.valid.seenTokens()
	if _, v, ok := credOK(r.auth.Credential(ctx)); ok {
		if _, tok, found := strings.Cut(v, " "); found {
			seen = append(seen, tok)
		}
	}
	return seen
}

// requireNoLeak fails if any of texts, or anything logged so far, holds the
// secret or an access token the client held.
func (r *rig) requireNoLeak(t testing.TB, texts ...string) {
	t.Helper()
	all := append(slices.Clone(texts), r.logs.text())
	secrets := append(secretForms(), r.tokensSeen(context.Background())...)
	for _, s := range all {
		for _, bad := range secrets {
			if len(bad) >= 5 && strings.Contains(s, bad) {
				t.Fatalf("a secret or token (%d bytes, starting %q) leaked into %q", len(bad), bad[:3], clipText(s, 300))
			}
		}
	}
}

// shape is one of the four call shapes; call returns nil only if the whole
// expected answer came back.
type shape struct {
	name string
	call func(ctx context.Context, e *testserver.EchoClient) error
}

var (
	unary = shape{"unary", func(ctx context.Context, e *testserver.EchoClient) error {
		got, err := e.Unary(ctx, "ping")
		return expect(err, got, "ping")
	}}
	serverStream = shape{"server-stream", func(ctx context.Context, e *testserver.EchoClient) error {
		got, err := e.ServerStream(ctx, "s")
		return expect(err, strings.Join(got, ","), "s-0,s-1,s-2")
	}}
	clientStream = shape{"client-stream", func(ctx context.Context, e *testserver.EchoClient) error {
		got, err := e.ClientStream(ctx, []string{"a", "b", "c"})
		return expect(err, got, "a,b,c")
	}}
	bidi = shape{"bidi", func(ctx context.Context, e *testserver.EchoClient) error {
		got, err := e.Bidi(ctx, []string{"x", "y"})
		return expect(err, strings.Join(got, ","), "x,y")
	}}
	allShapes = []shape{unary, serverStream, clientStream, bidi}
)

// errWrongAnswer marks a call that succeeded with the wrong answer: a lost
// or duplicated message.
type errWrongAnswer struct{ got, want string }

func (e errWrongAnswer) Error() string { return fmt.Sprintf("got %q, want %q", e.got, e.want) }

func expect(err error, got, want string) error {
	if err != nil {
		return err
	}
	if got != want {
		return errWrongAnswer{got, want}
	}
	return nil
}

// callWithin makes one call with the given deadline and fails the test if
// it has not returned hangGrace after that deadline.
func (r *rig) callWithin(t testing.TB, s shape, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.call(ctx, r.echo) }()
	hung := time.NewTimer(timeout + hangGrace)
	defer hung.Stop()
	select {
	case err := <-done:
		return err
	case <-hung.C:
		t.Fatalf("%s call still running %s after its deadline", s.name, hangGrace)
		return nil
	}
}

// validator accepts the tokens the token server issued and those that
// faults minted, and records every token it was shown. It is safe for
// concurrent use.
type validator struct {
	tokens testserver.TokenValidator
	// device, when set, also issues tokens (rigConfig.device).
	device testserver.TokenValidator

	mu      sync.Mutex          // guards minted, seen and revoked
	minted  map[string]bool     // minted tokens; false once revoked
	seen    map[string]struct{} // every token presented to the admin server
	revoked map[string]bool     // tokens seen before revokeAll
}

func newValidator(tokens *testserver.TokenServer) *validator {
	return &validator{tokens: tokens, minted: make(map[string]bool), seen: make(map[string]struct{}), revoked: make(map[string]bool)}
}

func (v *validator) Validate(ctx context.Context, token string) (testserver.TokenInfo, error) {
	v.mu.Lock()
	v.seen[token] = struct{}{}
	valid, minted := v.minted[token]
	revoked := v.revoked[token]
	v.mu.Unlock()
	switch {
	case revoked:
		return testserver.TokenInfo{}, fmt.Errorf("%w: token revoked", testserver.ErrTokenInvalid)
	case !minted && v.device != nil:
		return v.device.Validate(ctx, token)
	case !minted:
		return v.tokens.Validate(ctx, token)
	}
	if !valid {
		return testserver.TokenInfo{}, fmt.Errorf("%w: token revoked", testserver.ErrTokenInvalid)
	}
	return testserver.TokenInfo{ClientID: clientID}, nil
}

// mint returns a new valid token for a fault to hand out.
func (v *validator) mint() string {
	tok := "minted-" + rand.Text()
	v.mu.Lock()
	v.minted[tok] = true
	v.mu.Unlock()
	return tok
}

func (v *validator) revokeAll() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for tok := range v.minted {
		v.minted[tok] = false
	}
	for tok := range v.seen {
		v.revoked[tok] = true
	}
}

func (v *validator) seenTokens() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, 0, len(v.seen)+len(v.minted))
	for tok := range v.seen {
		out = append(out, tok)
	}
	for tok := range v.minted {
		out = append(out, tok)
	}
	return out
}

// mintingFault answers 200 with body, in which %q is replaced by a freshly
// minted valid token: a token endpoint that issues usable tokens with
// odd fields around them.
func (r *rig) mintingFault(body string) testserver.Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(w, body, r.valid.mint())
		return true
	}
}

// redirectFault answers every token request with a redirect to target.
func redirectFault(code int, target string) testserver.Fault {
	return func(w http.ResponseWriter, req *http.Request) bool {
		http.Redirect(w, req, target, code)
		return true
	}
}

// connSlot is the connection the config store is given: the store must
// exist before the connection whose interceptors need it, so the slot is
// filled once that connection is dialled. It is safe for concurrent use.
type connSlot struct {
	cc atomic.Pointer[grpc.ClientConn]
}

var errNotDialled = status.Error(codes.Unavailable, "reliability: connection not dialled yet")

func (s *connSlot) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	cc := s.cc.Load()
	if cc == nil {
		return errNotDialled
	}
	return cc.Invoke(ctx, method, args, reply, opts...)
}

func (s *connSlot) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cc := s.cc.Load()
	if cc == nil {
		return nil, errNotDialled
	}
	return cc.NewStream(ctx, desc, method, opts...)
}

// logSink collects JSON log lines from every component. It is safe for
// concurrent use.
type logSink struct {
	testserver.LogBuffer
}

func (s *logSink) logger() *slog.Logger { return s.Logger() }

// text returns everything logged, raw and with every JSON string decoded,
// so that escaping cannot hide a secret.
func (s *logSink) text() string {
	raw := s.String()
	var b strings.Builder
	b.WriteString(raw)
	for line := range strings.Lines(raw) {
		var v any
		if json.Unmarshal([]byte(line), &v) == nil {
			appendStrings(&b, v)
		}
	}
	return b.String()
}

// lines returns the number of log lines so far.
func (s *logSink) lines() int {
	return strings.Count(s.String(), "\n")
}

func appendStrings(b *strings.Builder, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString("\n")
		b.WriteString(v)
	case []any:
		for _, e := range v {
			appendStrings(b, e)
		}
	case map[string]any:
		for k, e := range v {
			b.WriteString("\n")
			b.WriteString(k)
			appendStrings(b, e)
		}
	}
}

var discardLog = log.New(io.Discard, "", 0)

// tlsFront is an HTTPS reverse proxy in front of the token server whose
// certificate can be swapped between one from the CA the client trusts and
// one from an unknown CA: an IdP that serves the wrong certificate, then is
// fixed. It is safe for concurrent use.
type tlsFront struct {
	srv      *httptest.Server
	tr       *http.Transport
	trusted  *tls.Config
	unknown  *tls.Config
	current  atomic.Pointer[tls.Config]
	caFile   string
	requests atomic.Int64
}

func newTLSFront(t testing.TB, target string) *tlsFront {
	t.Helper()
	good, err := testserver.NewCA()
	require.NoError(t, err)
	bad, err := testserver.NewCA()
	require.NoError(t, err)
	f := &tlsFront{tr: &http.Transport{}}
	f.trusted, err = good.ServerTLSConfig()
	require.NoError(t, err)
	f.unknown, err = bad.ServerTLSConfig()
	require.NoError(t, err)
	f.caFile, err = good.WriteCertFile(t.TempDir())
	require.NoError(t, err)
	f.current.Store(f.trusted)

	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: f.tr,
		ErrorLog:  discardLog,
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f.requests.Add(1)
		rp.ServeHTTP(w, req)
	}))
	f.srv.Config.ErrorLog = discardLog // failed handshakes are the point
	f.srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return f.current.Load(), nil
	}}
	f.srv.StartTLS()
	return f
}

func (f *tlsFront) url() string { return f.srv.URL }

// serve switches to the trusted (true) or the unknown certificate and
// drops open connections, so the next request shakes hands again.
func (f *tlsFront) serve(trusted bool) {
	if trusted {
		f.current.Store(f.trusted)
	} else {
		f.current.Store(f.unknown)
	}
	f.srv.CloseClientConnections()
}

func (f *tlsFront) close() {
	f.srv.Close()
	f.tr.CloseIdleConnections()
}

// switchable serves a handler on a fixed loopback address and can be
// stopped (connections are then refused) and started again there. It plays
// a forward proxy or an IdP that goes down and comes back. It is safe for
// concurrent use.
type switchable struct {
	addr     string
	tr       *http.Transport
	handler  http.Handler
	requests atomic.Int64

	mu  sync.Mutex // guards srv
	srv *httptest.Server
}

// newForwardProxy returns a running plain HTTP forward proxy.
func newForwardProxy(t testing.TB) *switchable {
	t.Helper()
	s := &switchable{tr: &http.Transport{}}
	// A proxied request carries its absolute target URL; pass it on as is.
	s.handler = &httputil.ReverseProxy{Rewrite: func(*httputil.ProxyRequest) {}, Transport: s.tr, ErrorLog: discardLog}
	require.NoError(t, s.start("127.0.0.1:0"))
	return s
}

// newReverseProxy returns a running plain HTTP server that passes every
// request on to target.
func newReverseProxy(t testing.TB, target string) *switchable {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	s := &switchable{tr: &http.Transport{}}
	s.handler = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: s.tr, ErrorLog: discardLog}
	require.NoError(t, s.start("127.0.0.1:0"))
	return s
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.requests.Add(1)
	s.handler.ServeHTTP(w, req)
}

// start listens on addr and serves; "127.0.0.1:0" picks a port, which later
// starts reuse.
func (s *switchable) start(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := httptest.NewUnstartedServer(s)
	_ = srv.Listener.Close()
	srv.Listener = lis
	srv.Config.ErrorLog = discardLog
	srv.Start()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv, s.addr = srv, lis.Addr().String()
	return nil
}

// restart starts again on the address of the first start, or skips the
// test if that address is taken by now.
func (s *switchable) restart(t testing.TB) {
	t.Helper()
	if err := s.start(s.addr); err != nil {
		t.Skipf("cannot listen on %s again: %v", s.addr, err)
	}
}

// stop closes the server; connections to its address are refused until
// start.
func (s *switchable) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	s.tr.CloseIdleConnections()
}

// recordingServer plays "another host": it records the Authorization
// header of every request it gets, and answers like a token endpoint would.
type recordingServer struct {
	srv  *httptest.Server
	mu   sync.Mutex // guards auth
	auth []string
}

func newRecordingServer(t testing.TB) *recordingServer {
	t.Helper()
	s := &recordingServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, req.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"from-the-other-host","token_type":"Bearer"}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *recordingServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auth)
}

// switchSecret is a SecretSource whose answer a test can change, as when
// an operator rotates a secret. It never prints the secret.
type switchSecret struct{ v atomic.Pointer[string] }

func newSwitchSecret(s string) *switchSecret {
	x := new(switchSecret)
	x.set(s)
	return x
}

func (x *switchSecret) set(s string) { x.v.Store(&s) }

func (x *switchSecret) ClientSecret(context.Context) (string, error) { return *x.v.Load(), nil }

func (x *switchSecret) String() string { return "switchSecret([REDACTED])" }

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

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
