//go:build unix

package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// proxyCommand is a proxyCommand script: each run prints the next token,
// proxy-1, proxy-2, ..., and counts its runs in a file; it fails while the
// fail file exists.
type proxyCommand struct {
	dir  string
	argv []string
}

func newProxyCommand(t *testing.T) *proxyCommand {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy-token.sh")
	body := `#!/bin/sh
dir='` + dir + `'
n=$(cat "$dir/count" 2>/dev/null || echo 0)
n=$((n+1))
echo $n > "$dir/count"
if [ -f "$dir/fail" ]; then printf 'proxy-leaked-%s' "$n"; echo 'proxy login required' >&2; exit 1; fi
if [ -f "$dir/slow" ]; then sleep 3; fi
printf 'proxy-%s\n' "$n"
`
	require.NoError(t, os.WriteFile(path, []byte(body), 0o700))
	return &proxyCommand{dir: dir, argv: []string{path}}
}

// runs returns how often the command ran.
func (c *proxyCommand) runs(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "count"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return n
}

func (c *proxyCommand) setFailing(t *testing.T, on bool) {
	t.Helper()
	path := filepath.Join(c.dir, "fail")
	if on {
		require.NoError(t, os.WriteFile(path, nil, 0o600))
	} else {
		require.NoError(t, os.Remove(path))
	}
}

// newProxyKeeper is the proxyCommand's own Keeper: the command flow, no
// config store to ask, the proxy-authorization header.
func newProxyKeeper(t *testing.T, argv []string) *authenticator.Keeper {
	t.Helper()
	flow, err := authenticator.NewCommandFlow(argv)
	require.NoError(t, err)
	k, err := authenticator.New("proxy.example:443", configstore.NewStatic(configstore.ClientConfig{}), flow, authenticator.WithHeaderKey("proxy-authorization"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// proxyEnv is FlyteAdmin (TCP, plaintext) and its token endpoint behind an
// IAP-like proxy, a proxyCommand, and a client whose OAuth2 token requests
// and gRPC calls all go through the proxy.
type proxyEnv struct {
	proxy   *testserver.Proxy
	tokens  *testserver.TokenServer
	admin   *testserver.AdminServer
	cmd     *proxyCommand
	proxyA  *authenticator.Keeper
	auth    *authenticator.Keeper
	conn    *grpc.ClientConn
	echo    *testserver.EchoClient
	retries counter
}

func newProxyEnv(t *testing.T, iopts ...interceptor.Option) *proxyEnv {
	t.Helper()
	return newProxyEnvWith(t, true, iopts...)
}

// newProxyOnlyEnv is a proxyEnv without OAuth2: FlyteAdmin needs no token
// and the connection has the proxy interceptors only.
func newProxyOnlyEnv(t *testing.T, iopts ...interceptor.Option) *proxyEnv {
	t.Helper()
	e := newProxyEnvWith(t, false, iopts...)
	e.admin.SetRequireAuth(false)
	return e
}

func newProxyEnvWith(t *testing.T, oauth bool, iopts ...interceptor.Option) *proxyEnv {
	t.Helper()
	e := &proxyEnv{cmd: newProxyCommand(t)}
	var err error
	e.proxy, err = testserver.NewProxy()
	require.NoError(t, err)
	t.Cleanup(e.proxy.Close)
	for i := 1; i <= 50; i++ {
		e.proxy.Allow(fmt.Sprintf("proxy-%d", i))
	}
	e.tokens, err = testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(t, err)
	t.Cleanup(e.tokens.Close)
	tokenFront, err := e.proxy.FrontHTTP(e.tokens.URL(), nil)
	require.NoError(t, err)
	e.admin, err = testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(e.tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokenFront + testserver.TokenPath}))
	require.NoError(t, err)
	t.Cleanup(e.admin.Close)
	grpcFront, err := e.proxy.FrontGRPC(e.admin.Addr())
	require.NoError(t, err)

	e.proxyA = newProxyKeeper(t, e.cmd.argv)
	iopts = append([]interceptor.Option{interceptor.WithInsecure(), e.retries.option()}, iopts...)

	// The config store asks AuthMetadataService through the proxy.
	late := new(lateConn)
	store, err := configstore.NewRemote(late, configstore.WithService(configstore.ServiceFlyte1))
	require.NoError(t, err)
	hc := &http.Client{Transport: interceptor.ProxyTransport(e.proxyA, nil, e.retries.option())}
	t.Cleanup(hc.CloseIdleConnections)
	e.auth, err = authenticator.NewClientCredentialsAuthenticator(grpcFront, clientID, clientSecret, store, authenticator.WithHTTPClient(hc))
	require.NoError(t, err)
	// The proxy interceptors go inside the OAuth2 ones: they see the
	// proxy's refusals first.
	unary := []grpc.UnaryClientInterceptor{interceptor.ProxyUnaryClientInterceptor(e.proxyA, iopts...)}
	stream := []grpc.StreamClientInterceptor{interceptor.ProxyStreamClientInterceptor(e.proxyA, iopts...)}
	if oauth {
		unary = append([]grpc.UnaryClientInterceptor{interceptor.UnaryClientInterceptor(e.auth, interceptor.WithInsecure())}, unary...)
		stream = append([]grpc.StreamClientInterceptor{interceptor.StreamClientInterceptor(e.auth, interceptor.WithInsecure())}, stream...)
	}
	e.conn, err = grpc.NewClient(grpcFront,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(unary...),
		grpc.WithChainStreamInterceptor(stream...),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.conn.Close() })
	late.set(e.conn)
	e.echo = testserver.NewEchoClient(e.conn)
	return e
}

func TestProxyEveryCallShapePasses(t *testing.T) {
	e := newProxyEnv(t)
	ctx := testContext(t)
	for _, s := range shapes {
		got, err := s.call(ctx, e.echo)
		require.NoError(t, err, s.name)
		assert.Equal(t, s.want, got, s.name)
		assert.Empty(t, e.admin.LastEchoMetadata().Get("proxy-authorization"), "the proxy consumes its header")
	}
	assert.Equal(t, 1, e.cmd.runs(t), "one proxy token for everything")
	assert.Zero(t, e.proxy.Rejected(), "the first call already carried the proxy token")
	oauth, public := e.admin.MetadataCalls()
	assert.Equal(t, int64(1), oauth, "the metadata RPCs passed the proxy")
	assert.Equal(t, int64(1), public)
	assert.Equal(t, int64(1), e.tokens.Issued(), "the token request passed the proxy")
	// 2 metadata RPCs, 1 token request, 4 calls.
	assert.Equal(t, int64(2+1+len(shapes)), e.proxy.Passed())
	assert.False(t, e.admin.MetadataRPCsSawToken(), "no OAuth2 token on the anonymous RPCs")
}

func TestProxyExpiredTokenRefreshedOnce(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			e := newProxyEnv(t)
			ctx := testContext(t)
			_, err := s.call(ctx, e.echo)
			require.NoError(t, err)
			e.proxy.ResetCounters()
			tokenRequests := e.tokens.Requests()
			e.retries.n.Store(0)

			e.proxy.Expire("proxy-1")
			got, err := s.call(ctx, e.echo)
			require.NoError(t, err)
			assert.Equal(t, s.want, got)
			assert.Equal(t, 2, e.cmd.runs(t), "the proxy command ran again, once")
			assert.Equal(t, int64(1), e.proxy.Rejected())
			assert.Equal(t, int64(1), e.retries.n.Load())
			assert.Equal(t, tokenRequests, e.tokens.Requests(), "the OAuth2 token was not touched")
		})
	}
}

func TestProxyConcurrentRefusalsRunTheCommandOnce(t *testing.T) {
	e := newProxyEnv(t)
	ctx := testContext(t)
	_, err := e.echo.Unary(ctx, "warm up")
	require.NoError(t, err)
	e.proxy.Expire("proxy-1")

	const callers = 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			s := shapes[i%len(shapes)]
			got, err := s.call(ctx, e.echo)
			if err == nil && got != s.want {
				err = fmt.Errorf("%s: got %q", s.name, got)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 2, e.cmd.runs(t), "200 refused callers, one new proxy token")
}

func TestProxyLeavesBackendRefusalsAlone(t *testing.T) {
	e := newProxyEnv(t)
	ctx := testContext(t)
	_, err := e.echo.Unary(ctx, "warm up")
	require.NoError(t, err)
	e.admin.SetRejectAll(true)
	for _, s := range shapes {
		_, err := s.call(ctx, e.echo)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), s.name)
		assert.False(t, isProxyFailure(err), "%s: %v", s.name, err)
	}
	assert.Equal(t, 1, e.cmd.runs(t), "FlyteAdmin's refusals are not the proxy's")
	assert.Zero(t, e.proxy.Rejected())
}

func TestProxyCommandFailsAtFirstCall(t *testing.T) {
	e := newProxyOnlyEnv(t)
	e.cmd.setFailing(t, true)
	ctx := testContext(t)
	for _, s := range shapes {
		_, err := s.call(ctx, e.echo)
		require.Error(t, err, s.name)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), s.name)
		var pe *interceptor.ProxyCredentialError
		require.ErrorAs(t, err, &pe, s.name)
		var ce *authenticator.CommandError
		require.ErrorAs(t, err, &ce, s.name)
		assert.Equal(t, 1, ce.ExitCode)
		assert.Contains(t, err.Error(), "exited with status 1")
		assert.Contains(t, err.Error(), "proxy login required")
		assert.NotContains(t, err.Error(), "proxy-leaked")
		assert.True(t, isProxyFailure(err))
	}
	assert.Equal(t, 1, e.cmd.runs(t), "calls within the keeper's pause share the failure: no run per call")
	assert.Zero(t, e.proxy.Passed()+e.proxy.Rejected(), "nothing was sent")

	e.cmd.setFailing(t, false)
	require.Eventually(t, func() bool {
		_, err := e.echo.Unary(ctx, "hi")
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "a command that works again is run again after the pause")
}

func TestProxyRefreshFailureKeepsTheRefusal(t *testing.T) {
	e := newProxyOnlyEnv(t)
	ctx := testContext(t)
	_, err := e.echo.Unary(ctx, "warm up")
	require.NoError(t, err)
	e.proxy.Expire("proxy-1")
	e.cmd.setFailing(t, true)
	_, err = e.echo.Unary(ctx, "hi")
	require.Error(t, err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	var re *interceptor.RefreshError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Message, "unexpected HTTP status code received from server: 401")
	var pe *interceptor.ProxyCredentialError
	require.ErrorAs(t, err, &pe)
	var ce *authenticator.CommandError
	require.ErrorAs(t, err, &ce)
	assert.True(t, isProxyFailure(err))
	assert.NotContains(t, err.Error(), "proxy-leaked")
	assert.NotContains(t, err.Error(), "proxy-1")
	assert.Equal(t, 2, e.cmd.runs(t))
}

func TestProxyCredentialWithheldOnPlaintext(t *testing.T) {
	cmd := newProxyCommand(t)
	p, err := testserver.NewProxy()
	require.NoError(t, err)
	t.Cleanup(p.Close)
	p.Allow("proxy-1")
	admin, err := testserver.NewAdminServer(testserver.WithTCP())
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	front, err := p.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	pa := newProxyKeeper(t, cmd.argv)
	conn, err := grpc.NewClient(front, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(interceptor.ProxyUnaryClientInterceptor(pa)))
	require.NoError(t, err)
	defer conn.Close()
	_, err = testserver.NewEchoClient(conn).Unary(testContext(t), "hi")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no transport security")
	assert.Equal(t, 1, cmd.runs(t), "no refresh for a credential that was never sent")
}

func TestProxyNilAuthenticator(t *testing.T) {
	var nilKeeper *authenticator.Keeper
	err := interceptor.ProxyUnaryClientInterceptor(nilKeeper)(t.Context(), "/m", nil, nil, nil, nil)
	assert.Equal(t, codes.Internal, status.Code(err))
	_, err = interceptor.ProxyStreamClientInterceptor(nil)(t.Context(), &grpc.StreamDesc{}, nil, "/m", nil)
	assert.Equal(t, codes.Internal, status.Code(err))
	_, err = interceptor.ProxyTransport(nil, nil).RoundTrip(httptestRequest(t, "https://example.invalid/"))
	assert.ErrorContains(t, err, "nil authenticator")
}

func httptestRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	return r
}

func TestIsProxyRejection(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unauthenticated, "unexpected HTTP status code received from server: 401 (Unauthorized); transport: received unexpected content-type \"text/plain\""), true},
		{status.Error(codes.Unknown, "unexpected HTTP status code received from server: 407 (Proxy Authentication Required)"), true},
		{status.Error(codes.Unauthenticated, "invalid token"), false},
		{status.Error(codes.Unavailable, "unexpected HTTP status code received from server: 503 (Service Unavailable)"), false},
		{status.Error(codes.Internal, "unexpected HTTP status code received from server: 401 (Unauthorized)"), false},
		{errors.New("unexpected HTTP status code received from server: 401 (Unauthorized)"), false},
		{nil, false},
	} {
		assert.Equal(t, tc.want, interceptor.IsProxyRejection(tc.err), "%v", tc.err)
	}
}

// recordingTransport answers from a list of statuses and records the
// requests it got, with their bodies.
type recordingTransport struct {
	mu       sync.Mutex // guards the fields below
	statuses []int
	headers  []http.Header // the answers' headers, by request
	got      []*http.Request
	bodies   []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body string
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		body = string(b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := len(r.got)
	r.got = append(r.got, req)
	r.bodies = append(r.bodies, body)
	code := http.StatusOK
	if i < len(r.statuses) {
		code = r.statuses[i]
	}
	h := http.Header{}
	if i < len(r.headers) && r.headers[i] != nil {
		h = r.headers[i]
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader("answer")), Request: req}, nil
}

func TestProxyTransport(t *testing.T) {
	challenge := http.Header{"Proxy-Authenticate": {testserver.ProxyAuthenticate}}
	for _, tc := range []struct {
		name     string
		url      string
		opts     []interceptor.Option
		statuses []int
		headers  []http.Header
		requests int    // sent to the base transport
		runs     int    // of the proxy command
		status   int    // returned
		header   string // Proxy-Authorization of the last request
	}{
		{name: "passes", url: "https://token.example/oauth2/token", requests: 1, runs: 1, status: 200, header: "Bearer proxy-1"},
		{name: "407 refreshes", url: "https://token.example/t", statuses: []int{407}, requests: 2, runs: 2, status: 200, header: "Bearer proxy-2"},
		{name: "401 with a challenge refreshes", url: "https://token.example/t", statuses: []int{401}, headers: []http.Header{challenge}, requests: 2, runs: 2, status: 200, header: "Bearer proxy-2"},
		{name: "the backend's 401 does not", url: "https://token.example/t", statuses: []int{401}, requests: 1, runs: 1, status: 401, header: "Bearer proxy-1"},
		{name: "retried once only", url: "https://token.example/t", statuses: []int{407, 407}, requests: 2, runs: 2, status: 407, header: "Bearer proxy-2"},
		{name: "loopback http", url: "http://127.0.0.1:9/t", requests: 1, runs: 1, status: 200, header: "Bearer proxy-1"},
		{name: "plain http elsewhere: withheld", url: "http://token.example/t", requests: 1, runs: 0, status: 200, header: ""},
		{name: "plain http with WithInsecure", url: "http://token.example/t", opts: []interceptor.Option{interceptor.WithInsecure()}, requests: 1, runs: 1, status: 200, header: "Bearer proxy-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newProxyCommand(t)
			base := &recordingTransport{statuses: tc.statuses, headers: tc.headers}
			rt := interceptor.ProxyTransport(newProxyKeeper(t, cmd.argv), base, tc.opts...)
			req := httptestRequest(t, tc.url)
			req.Header.Set("Authorization", "Basic abc")
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			require.Len(t, base.got, tc.requests)
			last := base.got[len(base.got)-1]
			assert.Equal(t, tc.header, last.Header.Get("Proxy-Authorization"))
			assert.Equal(t, "Basic abc", last.Header.Get("Authorization"))
			for _, b := range base.bodies {
				assert.Equal(t, "grant_type=client_credentials", b, "the body is sent whole every time")
			}
			assert.Empty(t, req.Header.Get("Proxy-Authorization"), "the caller's request is not changed")
			assert.Equal(t, tc.runs, cmd.runs(t))
		})
	}
}

func TestProxyTransportCommandFails(t *testing.T) {
	cmd := newProxyCommand(t)
	cmd.setFailing(t, true)
	base := &recordingTransport{}
	c := &http.Client{Transport: interceptor.ProxyTransport(newProxyKeeper(t, cmd.argv), base)}
	_, err := c.PostForm("https://token.example/t", url.Values{"a": {"b"}})
	var ce *authenticator.CommandError
	require.ErrorAs(t, err, &ce)
	assert.NotContains(t, err.Error(), "proxy-leaked")
	assert.Empty(t, base.got, "nothing was sent")
}

func TestProxyStreamHeader(t *testing.T) {
	for _, open := range []struct {
		name string
		open func(ctx context.Context, c *testserver.EchoClient) (grpc.ClientStream, error)
	}{
		{"server-stream", func(ctx context.Context, c *testserver.EchoClient) (grpc.ClientStream, error) {
			return c.OpenServerStream(ctx, "hi")
		}},
		{"bidi", func(ctx context.Context, c *testserver.EchoClient) (grpc.ClientStream, error) {
			s, err := c.OpenBidi(ctx)
			if err != nil {
				return nil, err
			}
			for _, v := range []string{"hi-0", "hi-1", "hi-2"} {
				if err := s.SendMsg(wrapperspb.String(v)); err != nil {
					return nil, err
				}
			}
			return s, s.CloseSend()
		}},
	} {
		t.Run(open.name, func(t *testing.T) {
			e := newProxyEnv(t)
			ctx := testContext(t)
			_, err := e.echo.Unary(ctx, "warm up")
			require.NoError(t, err)

			// The proxy refuses the stream: Header retries it.
			e.proxy.Expire("proxy-1")
			s, err := open.open(ctx, e.echo)
			require.NoError(t, err)
			md, err := s.Header()
			require.NoError(t, err)
			assert.NotNil(t, md)
			got, err := testserver.RecvAll(s)
			require.NoError(t, err)
			assert.Equal(t, []string{"hi-0", "hi-1", "hi-2"}, got)
			assert.Equal(t, 2, e.cmd.runs(t))

			// FlyteAdmin refuses it: Header leaves it to the OAuth2
			// interceptor outside, which retries once, and RecvMsg reports
			// the second refusal.
			e.admin.SetRejectAll(true)
			s, err = open.open(ctx, e.echo)
			require.NoError(t, err)
			_, err = s.Header()
			require.NoError(t, err)
			_, err = testserver.RecvAll(s)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			assert.False(t, isProxyFailure(err))
			assert.Equal(t, 2, e.cmd.runs(t), "no proxy run for FlyteAdmin's refusal")
		})
	}
}

// BenchmarkProxyUnaryInterceptor is the proxy interceptor's own cost on a
// call with a proxy token held: no gRPC underneath.
func BenchmarkProxyUnaryInterceptor(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "tok.sh")
	require.NoError(b, os.WriteFile(path, []byte("#!/bin/sh\nprintf bench-token\n"), 0o700))
	flow, err := authenticator.NewCommandFlow([]string{path})
	require.NoError(b, err)
	k, err := authenticator.New("proxy.example:443", configstore.NewStatic(configstore.ClientConfig{}), flow, authenticator.WithHeaderKey("proxy-authorization"))
	require.NoError(b, err)
	defer k.Close()
	require.NoError(b, k.RefreshCredentials(b.Context()))
	icpt := interceptor.ProxyUnaryClientInterceptor(k)
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := icpt(ctx, "/m", nil, nil, nil, invoker); err != nil {
			b.Fatal(err)
		}
	}
}

// isProxyFailure reports whether err is the proxy's doing: its refusal, or
// no proxy credential.
func isProxyFailure(err error) bool {
	var pe *interceptor.ProxyCredentialError
	return interceptor.IsProxyRejection(err) || errors.As(err, &pe)
}

// The proxy path reports the caller's own code when the caller's deadline
// ended while the proxy credential was being refreshed, as the OAuth2 path
// does (issue 23, item 10).
func TestProxyRefreshKeepsTheCallersDeadlineCode(t *testing.T) {
	e := newProxyOnlyEnv(t)
	ctx := testContext(t)
	_, err := e.echo.Unary(ctx, "warm up")
	require.NoError(t, err)
	e.proxy.Expire("proxy-1")
	require.NoError(t, os.WriteFile(filepath.Join(e.cmd.dir, "slow"), nil, 0o600))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = e.echo.Unary(short, "x")
	require.Error(t, err)
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	var re *interceptor.RefreshError
	assert.ErrorAs(t, err, &re, "errors.As still reaches why the refresh failed")
}

// A service that relays the error of its own upstream call can answer, in
// gRPC, the very text grpc-go gives a proxy's HTTP 401 or 407. That call
// got past the proxy and ran: it must not be taken for a proxy refusal,
// neither to run the proxy command again nor to be sent a second time.
func TestProxyLeavesRelayedUpstreamRefusalsAlone(t *testing.T) {
	relayed := []error{
		status.Error(codes.Unauthenticated, "unexpected HTTP status code received from server: 401 (Unauthorized); transport: received unexpected content-type \"text/html\""),
		status.Error(codes.Unknown, "unexpected HTTP status code received from server: 407 (Proxy Authentication Required)"),
	}
	for _, oauth := range []bool{true, false} {
		for _, s := range shapes {
			t.Run(fmt.Sprintf("oauth=%v/%s", oauth, s.name), func(t *testing.T) {
				e := newProxyEnvWith(t, oauth)
				if !oauth {
					e.admin.SetRequireAuth(false)
				}
				ctx := testContext(t)
				_, err := s.call(ctx, e.echo)
				require.NoError(t, err)
				tokenRequests := e.tokens.Requests()
				for _, want := range relayed {
					e.admin.SetEchoError(want)
					before := e.admin.EchoCalls()
					_, err = s.call(ctx, e.echo)
					assert.Equal(t, status.Code(want), status.Code(err), "%v", err)
					assert.Equal(t, status.Convert(want).Message(), status.Convert(err).Message())
					assert.Equal(t, before+1, e.admin.EchoCalls(), "the call ran once, and was not sent again")
				}
				assert.Equal(t, 1, e.cmd.runs(t), "the proxy command did not run again")
				assert.Zero(t, e.proxy.Rejected())
				assert.Zero(t, e.retries.n.Load())
				assert.Equal(t, tokenRequests, e.tokens.Requests(), "the OAuth2 token was not touched")
			})
		}
	}
}
