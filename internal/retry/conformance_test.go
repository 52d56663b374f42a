package retry_test

// Conformance tests of the retry engine: the same stream tests, run against
// each of its three adapters (the OAuth2 gRPC interceptor, the proxy gRPC
// interceptor and connect-go's interceptor), each on the fakes of package
// testserver. A rig builds one adapter with its server and hides how that
// server refuses a credential and how attempts and refreshes are counted;
// a confStream hides gRPC's and connect-go's ways of streaming.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/retry"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

const (
	clientID     = "conformance-client"
	clientSecret = "s3cr3t-never-printed-c0nf"
	// testTimeout bounds every wait, so that a bug fails a test rather
	// than hanging it. No test relies on it expiring.
	testTimeout = 20 * time.Second
	// streamTimeout bounds every call: longer than any wait, so that a
	// call that hangs is reported as such, not as its context's end.
	streamTimeout = 2 * testTimeout
	kib           = 1 << 10
)

// confStream is one streaming call, the same for every adapter.
type confStream interface {
	// Send sends v; an error wrapping io.EOF says the attempt ended.
	Send(v string) error
	// CloseSend closes the sending side.
	CloseSend() error
	// Recv receives one value; an error wrapping io.EOF is the clean end.
	Recv() (string, error)
	// Header is the blocking header read: gRPC's Header, connect-go's
	// ResponseHeader.
	Header() (map[string][]string, error)
	// Peek calls the accessors that must never block (gRPC's Context,
	// connect-go's Spec, Peer and RequestHeader), checks what they return,
	// and returns a comparable value that names the attempt serving the
	// call now.
	Peek(t *testing.T) any
	// Close releases the call.
	Close()
}

// rig is one adapter of the retry engine, with a server behind it that
// accepts the adapter's current credential.
type rig interface {
	// openBidi opens a bidi stream, which echoes each value.
	openBidi(t *testing.T) confStream
	// openClient opens a client stream, whose one answer is the values
	// received, joined by ",".
	openClient(t *testing.T) confStream
	// reject makes the server (or proxy) refuse the current credential
	// from now on.
	reject(t *testing.T)
	// holdRefresh makes getting a new credential wait until release.
	holdRefresh(t *testing.T) (release func())
	// attempts counts the stream attempts that reached the server side.
	attempts() int64
	// refreshes counts the requests for a new credential.
	refreshes() int64
	// requireRefusal checks that err is the refusal of the credential, as
	// the adapter's dialect spells it.
	requireRefusal(t *testing.T, err error)
}

var rigs = []struct {
	name string
	new  func(t *testing.T) rig
}{
	{"oauth2-grpc", newOAuthRig},
	{"proxy-grpc", newProxyRig},
	{"connect", newConnectRig},
}

// forEachRig runs test on a fresh rig of every adapter, checking that no
// goroutine outlives it.
func forEachRig(t *testing.T, test func(t *testing.T, r rig)) {
	for _, rc := range rigs {
		t.Run(rc.name, func(t *testing.T) {
			// Registered first, so it runs last, after every Cleanup that
			// closes a stream, server or connection.
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
			test(t, rc.new(t))
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// await returns what ch delivers, failing the test if it delivers nothing
// within testTimeout: a hang, not a slow machine.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		require.FailNow(t, "hung: "+what)
		panic("unreachable")
	}
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, testTimeout, time.Millisecond, what)
}

// gate holds token requests until it is opened.
type gate struct {
	open chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) fault() testserver.Fault {
	return func(_ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
		return false // then answer normally
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// newKeeper is a client-credentials Keeper on tokens that holds a first
// token.
func newKeeper(t *testing.T, endpoint string, tokens *testserver.TokenServer) *authenticator.Keeper {
	k, err := authenticator.NewClientCredentialsAuthenticator(endpoint, clientID, clientSecret,
		configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: tokens.TokenURL()}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	require.NoError(t, k.RefreshCredentials(testContext(t)))
	return k
}

// The gRPC rigs share how they open streams.

type grpcRig struct{ echo *testserver.EchoClient }

func (r *grpcRig) open(t *testing.T, open func(context.Context, ...grpc.CallOption) (grpc.ClientStream, error)) confStream {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	cs, err := open(ctx)
	if err != nil {
		cancel()
	}
	require.NoError(t, err)
	s := &grpcStream{cs: cs, cancel: cancel}
	t.Cleanup(s.Close)
	return s
}

func (r *grpcRig) openBidi(t *testing.T) confStream   { return r.open(t, r.echo.OpenBidi) }
func (r *grpcRig) openClient(t *testing.T) confStream { return r.open(t, r.echo.OpenClientStream) }

// The OAuth2 gRPC rig: an admin server (bufconn, plaintext) that accepts
// the tokens of a token server, a client-credentials Keeper, and a
// connection through interceptor.StreamClientInterceptor.

type oauthRig struct {
	grpcRig
	tokens *testserver.TokenServer
	admin  *testserver.AdminServer
}

func newOAuthRig(t *testing.T) rig {
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	admin, err := testserver.NewAdminServer(testserver.WithValidator(tokens))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	k := newKeeper(t, admin.Addr(), tokens)
	conn, err := grpc.NewClient(admin.Addr(), append(admin.DialOptions(),
		grpc.WithChainStreamInterceptor(interceptor.StreamClientInterceptor(k, interceptor.WithInsecure())))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	tokens.ResetCounters()
	return &oauthRig{grpcRig: grpcRig{testserver.NewEchoClient(conn)}, tokens: tokens, admin: admin}
}

func (r *oauthRig) reject(*testing.T) { r.tokens.RevokeAll() }

func (r *oauthRig) holdRefresh(t *testing.T) func() {
	g := newGate()
	r.tokens.SetFault(g.fault())
	t.Cleanup(g.release)
	return g.release
}

func (r *oauthRig) attempts() int64  { return r.admin.EchoCalls() }
func (r *oauthRig) refreshes() int64 { return r.tokens.Requests() }

func (r *oauthRig) requireRefusal(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "invalid Bearer token")
	var re *interceptor.RefreshError
	assert.False(t, errors.As(err, &re), "the server's refusal, not a failed refresh: %v", err)
}

// The proxy gRPC rig: an open admin server (TCP, plaintext) behind an
// IAP-like proxy, a proxy credential of our own (proxyCreds), and a
// connection through interceptor.ProxyStreamClientInterceptor.

type proxyRig struct {
	grpcRig
	proxy *testserver.Proxy
	creds *proxyCreds
}

func newProxyRig(t *testing.T) rig {
	proxy, err := testserver.NewProxy()
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	admin, err := testserver.NewAdminServer(testserver.WithTCP())
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	front, err := proxy.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	creds := &proxyCreds{proxy: proxy}
	creds.issue()
	conn, err := grpc.NewClient(front,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainStreamInterceptor(interceptor.ProxyStreamClientInterceptor(creds, interceptor.WithInsecure())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &proxyRig{grpcRig: grpcRig{testserver.NewEchoClient(conn)}, proxy: proxy, creds: creds}
}

func (r *proxyRig) reject(*testing.T) { r.proxy.Expire(r.creds.current()) }

func (r *proxyRig) holdRefresh(t *testing.T) func() {
	release := r.creds.holdRefreshes()
	t.Cleanup(release)
	return release
}

func (r *proxyRig) attempts() int64  { return r.proxy.Passed() + r.proxy.Rejected() }
func (r *proxyRig) refreshes() int64 { return r.creds.refreshes.Load() }

func (r *proxyRig) requireRefusal(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.True(t, interceptor.IsProxyRejection(err), "a proxy's refusal: %v", err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	var re *interceptor.RefreshError
	assert.False(t, errors.As(err, &re), "the proxy's refusal, not a failed refresh: %v", err)
}

// proxyCreds is a proxy credential: tokens proxy-1, proxy-2, ..., each
// allowed by the proxy when issued. Rejected issues a new one unless the
// rejected value was replaced already, as a Keeper does; it can be made to
// wait until released.
type proxyCreds struct {
	proxy     *testserver.Proxy
	refreshes atomic.Int64

	mu    sync.Mutex // guards the fields below
	n     int
	token string
	hold  chan struct{}
}

var _ authenticator.Authenticator = (*proxyCreds)(nil)

func (p *proxyCreds) issue() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.token = fmt.Sprintf("proxy-%d", p.n)
	p.proxy.Allow(p.token)
}

func (p *proxyCreds) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.token
}

func (p *proxyCreds) Credential(context.Context) (string, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token == "" {
		return "", "", errors.New("proxyCreds: no token")
	}
	return "proxy-authorization", "Bearer " + p.token, nil
}

func (p *proxyCreds) Rejected(ctx context.Context, value string) error {
	p.mu.Lock()
	replaced := value != "" && value != "Bearer "+p.token
	hold := p.hold
	p.mu.Unlock()
	if replaced {
		return nil
	}
	p.refreshes.Add(1)
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.issue()
	return nil
}

func (p *proxyCreds) Accepted(string) {}

func (p *proxyCreds) holdRefreshes() (release func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.hold = ch
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.hold = nil
			p.mu.Unlock()
			close(ch)
		})
	}
}

// grpcStream is a confStream on a grpc.ClientStream.
type grpcStream struct {
	cs     grpc.ClientStream
	cancel context.CancelFunc
}

func (s *grpcStream) Send(v string) error { return s.cs.SendMsg(wrapperspb.String(v)) }
func (s *grpcStream) CloseSend() error    { return s.cs.CloseSend() }

func (s *grpcStream) Recv() (string, error) {
	m := new(wrapperspb.StringValue)
	err := s.cs.RecvMsg(m)
	return m.GetValue(), err
}

func (s *grpcStream) Header() (map[string][]string, error) { return s.cs.Header() }

func (s *grpcStream) Peek(t *testing.T) any {
	ctx := s.cs.Context()
	assert.NotNil(t, ctx)
	return ctx
}

func (s *grpcStream) Close() { s.cancel() }

// The connect-go rig: a Flyte 2 connect-go server (plaintext h2c on
// loopback) that accepts the tokens of a token server, a client-credentials
// Keeper, and a client through connectauth's interceptor.

type connectRig struct {
	tokens *testserver.TokenServer
	srv    *testserver.ConnectServer
	client flyte2pbconnect.EchoServiceClient
}

func newConnectRig(t *testing.T) rig {
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, clientSecret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	srv, err := testserver.NewConnectServer(testserver.WithConnectValidator(tokens))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	k := newKeeper(t, srv.URL(), tokens)
	ic, err := connectauth.NewInterceptor(k, srv.URL())
	require.NoError(t, err)
	hc := srv.HTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	tokens.ResetCounters()
	return &connectRig{tokens: tokens, srv: srv,
		client: flyte2pbconnect.NewEchoServiceClient(hc, srv.URL(), connect.WithInterceptors(ic))}
}

func (r *connectRig) open(t *testing.T, procedure string, open func(context.Context) (connect.StreamingClientConn, error)) confStream {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	conn, err := open(ctx)
	if err != nil {
		cancel()
	}
	require.NoError(t, err)
	s := &connectStream{conn: conn, cancel: cancel, procedure: procedure}
	t.Cleanup(s.Close)
	return s
}

func (r *connectRig) openBidi(t *testing.T) confStream {
	return r.open(t, flyte2pbconnect.EchoServiceChatProcedure, func(ctx context.Context) (connect.StreamingClientConn, error) {
		return r.client.Chat(ctx).Conn()
	})
}

func (r *connectRig) openClient(t *testing.T) confStream {
	return r.open(t, flyte2pbconnect.EchoServiceCollectProcedure, func(ctx context.Context) (connect.StreamingClientConn, error) {
		return r.client.Collect(ctx).Conn()
	})
}

func (r *connectRig) reject(*testing.T) { r.tokens.RevokeAll() }

func (r *connectRig) holdRefresh(t *testing.T) func() {
	g := newGate()
	r.tokens.SetFault(g.fault())
	t.Cleanup(g.release)
	return g.release
}

func (r *connectRig) attempts() int64  { return r.srv.EchoCalls() }
func (r *connectRig) refreshes() int64 { return r.tokens.Requests() }

func (r *connectRig) requireRefusal(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)
	assert.Contains(t, err.Error(), "invalid Bearer token")
	// A failed refresh would be an *interceptor.RefreshError inside the
	// *connect.Error, as for gRPC.
	var re *interceptor.RefreshError
	assert.False(t, errors.As(err, &re), "the server's refusal, not a failed refresh: %v", err)
}

// connectStream is a confStream on a connect.StreamingClientConn.
type connectStream struct {
	conn      connect.StreamingClientConn
	cancel    context.CancelFunc
	procedure string
	once      sync.Once
}

func (s *connectStream) Send(v string) error {
	return s.conn.Send(&flyte2pb.EchoRequest{Value: v})
}

func (s *connectStream) CloseSend() error { return s.conn.CloseRequest() }

func (s *connectStream) Recv() (string, error) {
	m := new(flyte2pb.EchoResponse)
	err := s.conn.Receive(m)
	return m.GetValue(), err
}

func (s *connectStream) Header() (map[string][]string, error) {
	return s.conn.ResponseHeader(), nil
}

func (s *connectStream) Peek(t *testing.T) any {
	assert.Equal(t, s.procedure, s.conn.Spec().Procedure)
	assert.NotEmpty(t, s.conn.Peer().Addr)
	value := s.conn.RequestHeader().Get("Authorization")
	assert.True(t, strings.HasPrefix(value, "Bearer "), "the attempt's request header carries its token")
	return value
}

func (s *connectStream) Close() {
	s.once.Do(func() {
		_ = s.conn.CloseResponse()
		s.cancel()
	})
}

// values returns n distinct values of size bytes each (at least 5).
func values(n, size int) []string {
	vs := make([]string, n)
	for i := range vs {
		head := fmt.Sprintf("m%03d:", i)
		vs[i] = head + strings.Repeat(string(rune('a'+i%26)), max(size-len(head), 0))
	}
	return vs
}

// short shows the head and length of each value, for readable failures.
func short(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%.5s(%d)", v, len(v))
	}
	return out
}

// recvAll receives until the stream ends; io.EOF is a clean end and gives
// a nil error.
func recvAll(s confStream) ([]string, error) {
	var got []string
	for {
		v, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, v)
	}
}

// A stream that sent a few messages before the server refused its
// credential, before any response, is retried once with a new credential,
// and the server receives each message once, in order.
func TestConformanceReplayWithinBound(t *testing.T) {
	want := values(3, 16)
	t.Run("client-stream", func(t *testing.T) {
		forEachRig(t, func(t *testing.T, r rig) {
			r.reject(t)
			s := r.openClient(t)
			for _, v := range want {
				require.NoError(t, s.Send(v), "within the bound, a message is kept for the replay")
			}
			require.NoError(t, s.CloseSend())
			got, err := s.Recv()
			require.NoError(t, err)
			assert.Equal(t, strings.Join(want, ","), got, "what the server received on the retry: each message once, in order")
			assert.EqualValues(t, 2, r.attempts(), "the refused attempt and one retry")
			assert.EqualValues(t, 1, r.refreshes())
		})
	})
	t.Run("bidi", func(t *testing.T) {
		forEachRig(t, func(t *testing.T, r rig) {
			r.reject(t)
			s := r.openBidi(t)
			for _, v := range want {
				require.NoError(t, s.Send(v))
			}
			require.NoError(t, s.CloseSend())
			got, err := recvAll(s)
			require.NoError(t, err)
			assert.Equal(t, want, got, "each message echoed once, in order")
			assert.EqualValues(t, 2, r.attempts())
			assert.EqualValues(t, 1, r.refreshes())
		})
	})
}

// Past the replay bound (64 KiB), a refused stream is not retried: the
// caller gets the refusal.
func TestConformanceRefusalPastBound(t *testing.T) {
	big := values(3, 30*kib) // the third passes retry.MaxReplayBytes
	require.Greater(t, 3*30*kib, retry.MaxReplayBytes)
	require.Less(t, 2*(30*kib+10), retry.MaxReplayBytes)
	forEachRig(t, func(t *testing.T, r rig) {
		r.reject(t)
		s := r.openBidi(t)
		for _, v := range big {
			if err := s.Send(v); err != nil {
				require.ErrorIs(t, err, io.EOF, "a send on an ended attempt")
				break
			}
		}
		_ = s.CloseSend()
		got, err := recvAll(s)
		assert.Empty(t, short(got))
		r.requireRefusal(t, err)
		assert.EqualValues(t, 1, r.attempts(), "no retry")
		assert.Zero(t, r.refreshes(), "no refresh")
	})
}

type headerResult struct {
	md  map[string][]string
	err error
}

type recvResult struct {
	v   string
	err error
}

// The blocking header read on one goroutine and the receive on another,
// across a refusal and its retry, in three orders: no race, no deadlock,
// the message once.
func TestConformanceHeaderWhileReceiving(t *testing.T) {
	forEachRig(t, func(t *testing.T, r rig) {
		for _, order := range []string{"together", "receive first, header during the refresh", "header first"} {
			attempts, refreshes := r.attempts(), r.refreshes()
			r.reject(t)
			s := r.openBidi(t)
			require.NoError(t, s.Send("h"), order)
			require.NoError(t, s.CloseSend(), order)

			start, calling := make(chan struct{}), make(chan struct{})
			hc := make(chan headerResult, 1)
			rc := make(chan recvResult, 1)
			go func() {
				<-start
				close(calling)
				md, err := s.Header()
				hc <- headerResult{md, err}
			}()
			recv := func() {
				v, err := s.Recv()
				rc <- recvResult{v, err}
			}
			var h headerResult
			switch order {
			case "together":
				go func() { <-start; recv() }()
				close(start)
				h = await(t, hc, order+": Header")
			case "receive first, header during the refresh":
				release := r.holdRefresh(t)
				go recv()
				eventually(t, func() bool { return r.refreshes() > refreshes }, "the receive started the refresh")
				close(start)
				await(t, calling, "the header goroutine")
				release()
				h = await(t, hc, order+": Header")
			case "header first":
				close(start)
				h = await(t, hc, order+": Header, with no one receiving")
				go recv()
			}
			require.NoError(t, h.err, order)
			assert.NotNil(t, h.md, order)
			got := await(t, rc, order+": Recv")
			require.NoError(t, got.err, order)
			assert.Equal(t, "h", got.v, order)
			rest, err := recvAll(s)
			require.NoError(t, err, order)
			assert.Empty(t, rest, "%s: the message arrived once", order)
			md, err := s.Header()
			require.NoError(t, err, order)
			assert.NotNil(t, md, "%s: the header of the attempt that served the call", order)
			assert.EqualValues(t, attempts+2, r.attempts(), "%s: one retry", order)
			assert.EqualValues(t, refreshes+1, r.refreshes(), "%s: one refresh", order)
			s.Close()
		}
	})
}

// The accessors that must never block (gRPC's Context, connect-go's Spec,
// Peer and RequestHeader) answer at once while a retry waits on a slow
// refresh, and name the new attempt once the retry is made.
func TestConformanceAccessorsDuringSlowRefresh(t *testing.T) {
	forEachRig(t, func(t *testing.T, r rig) {
		release := r.holdRefresh(t)
		r.reject(t)
		s := r.openBidi(t)
		require.NoError(t, s.Send("a"))
		rc := make(chan recvResult, 1)
		go func() {
			v, err := s.Recv()
			rc <- recvResult{v, err}
		}()
		eventually(t, func() bool { return r.refreshes() == 1 }, "the receive started the refresh")

		var (
			done   atomic.Bool
			before any
		)
		go func() {
			before = s.Peek(t)
			done.Store(true)
		}()
		eventually(t, done.Load, "the accessors answered while the refresh waits")
		select {
		case got := <-rc:
			require.FailNow(t, "the receive ended before the refresh was released", "%+v", got)
		default:
		}

		release()
		got := await(t, rc, "Recv after the refresh")
		require.NoError(t, got.err)
		assert.Equal(t, "a", got.v)
		after := s.Peek(t)
		assert.True(t, before != after, "the accessors follow the attempt that serves the call")
		if ctx, ok := after.(context.Context); ok {
			assert.NoError(t, ctx.Err(), "the serving attempt's context is live")
		}
		require.NoError(t, s.CloseSend())
		rest, err := recvAll(s)
		require.NoError(t, err)
		assert.Empty(t, rest)
		assert.EqualValues(t, 2, r.attempts())
		assert.EqualValues(t, 1, r.refreshes())
	})
}

// A 40 × 32 KiB bidi stream under flow control: the client sends all 40
// while the server echoes each and the client receives concurrently.
func TestConformanceLargeBidi(t *testing.T) {
	want := values(40, 32*kib)

	// sendAll sends want on s from a goroutine, calling after(i, err)
	// after each send; it stops at the first error. It delivers the error
	// that stopped it, or CloseSend's.
	sendAll := func(s confStream, after func(i int, err error)) <-chan error {
		ch := make(chan error, 1)
		go func() {
			for i, v := range want {
				err := s.Send(v)
				after(i, err)
				if err != nil {
					ch <- err
					return
				}
			}
			ch <- s.CloseSend()
		}()
		return ch
	}

	t.Run("valid credential", func(t *testing.T) {
		forEachRig(t, func(t *testing.T, r rig) {
			s := r.openBidi(t)
			sent := sendAll(s, func(int, error) {})
			got, err := recvAll(s)
			require.NoError(t, err)
			require.NoError(t, await(t, sent, "the sender"))
			require.Equal(t, short(want), short(got))
			require.Equal(t, want, got, "every message echoed once, in order")
			assert.EqualValues(t, 1, r.attempts())
			assert.Zero(t, r.refreshes())
		})
	})

	t.Run("refused", func(t *testing.T) {
		forEachRig(t, func(t *testing.T, r rig) {
			r.reject(t)
			s := r.openBidi(t)
			// The receive starts once the second message has gone, past
			// the replay bound, so that no retry is possible whenever the
			// refusal is learnt.
			pastBound := make(chan struct{})
			var (
				once     sync.Once
				firstErr error
			)
			sent := sendAll(s, func(i int, err error) {
				if i == 0 {
					firstErr = err
				}
				if i >= 1 || err != nil {
					once.Do(func() { close(pastBound) })
				}
			})
			await(t, pastBound, "the first two sends")
			require.NoError(t, firstErr, "the first message is kept for a replay, whatever became of its attempt")
			got, err := recvAll(s)
			assert.Empty(t, short(got))
			r.requireRefusal(t, err)
			if err := await(t, sent, "the sender, after the refusal"); err != nil {
				assert.ErrorIs(t, err, io.EOF, "a send on an ended attempt")
			}
			assert.EqualValues(t, 1, r.attempts(), "no retry")
			assert.Zero(t, r.refreshes(), "no refresh")
		})
	})

	// Receiving from the start, the refusal may be learnt while the first
	// message alone is kept (the second passes the bound): then the call
	// is retried and completes; else it fails with the refusal. Either way
	// nothing is lost, duplicated or reordered, and nothing hangs.
	t.Run("refused, receiving from the start", func(t *testing.T) {
		forEachRig(t, func(t *testing.T, r rig) {
			r.reject(t)
			s := r.openBidi(t)
			sent := sendAll(s, func(int, error) {})
			got, err := recvAll(s)
			serr := await(t, sent, "the sender")
			if err != nil {
				r.requireRefusal(t, err)
				assert.Empty(t, short(got))
				if serr != nil {
					assert.ErrorIs(t, serr, io.EOF, "a send on an ended attempt")
				}
				assert.EqualValues(t, 1, r.attempts(), "no retry")
				assert.Zero(t, r.refreshes(), "no refresh")
				return
			}
			t.Log("retried")
			require.NoError(t, serr)
			require.Equal(t, short(want), short(got))
			require.Equal(t, want, got, "every message echoed once, in order")
			assert.EqualValues(t, 2, r.attempts())
			assert.EqualValues(t, 1, r.refreshes())
		})
	})
}
