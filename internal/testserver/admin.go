package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

const (
	// BufconnTarget is the grpc.NewClient target of an AdminServer on
	// bufconn. Its authority, bufnet, is a name the CA's certificates cover.
	// Being a constant, it is safe for concurrent use.
	BufconnTarget = "passthrough:///bufnet"

	// DefaultHeaderKey is the metadata key the echo service reads the
	// bearer token from unless WithHeaderKey says otherwise. Being a
	// constant, it is safe for concurrent use.
	DefaultHeaderKey = "authorization"

	bufconnSize        = 1 << 20
	bearerPrefix       = "bearer "
	maxRecordedHeaders = 64
)

// AdminOption configures an AdminServer. Options are pure values, safe for
// concurrent use.
type AdminOption func(*adminConfig) error

type adminConfig struct {
	tcp       bool
	tcpAddr   string // loopback address to listen on; "" picks a free port
	ca        *CA
	validator TokenValidator
	headerKey string
	oauth2    *authmetapb.OAuth2MetadataResponse
	public    *authmetapb.PublicClientAuthConfigResponse
	// noIdentity: no IdentityService, as FlyteAdmin without useAuth.
	noIdentity bool
	// blanket: FlyteAdmin's scope check on unary calls.
	blanket bool
}

// WithoutIdentityService leaves IdentityService unserved, as FlyteAdmin
// does without useAuth: UserInfo answers Unimplemented.
func WithoutIdentityService() AdminOption {
	return func(c *adminConfig) error { c.noIdentity = true; return nil }
}

// WithBufconn makes the AdminServer listen on an in-memory bufconn
// listener; this is the default. Clients dial Addr() with Dialer(). It is
// safe for concurrent use.
func WithBufconn() AdminOption {
	return func(c *adminConfig) error {
		c.tcp = false
		return nil
	}
}

// WithTCP makes the AdminServer listen on a free loopback TCP port
// (127.0.0.1:0). It is safe for concurrent use.
func WithTCP() AdminOption {
	return func(c *adminConfig) error {
		c.tcp = true
		return nil
	}
}

// WithTCPAddr makes the AdminServer listen on the given loopback TCP
// address, such as the Addr() of a server that was closed, so that tests can
// bring a server back where clients expect it. It is safe for concurrent use.
func WithTCPAddr(addr string) AdminOption {
	return func(c *adminConfig) error {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("testserver: WithTCPAddr: %w", err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("testserver: WithTCPAddr: %q is not a loopback address", addr)
		}
		c.tcp, c.tcpAddr = true, addr
		return nil
	}
}

// WithAdminTLS makes the AdminServer serve TLS with a leaf certificate
// signed by ca. The default is plaintext. It is safe for concurrent use.
func WithAdminTLS(ca *CA) AdminOption {
	return func(c *adminConfig) error {
		if ca == nil {
			return errors.New("testserver: WithAdminTLS: nil CA")
		}
		c.ca = ca
		return nil
	}
}

// WithValidator protects the echo service: every call must carry a bearer
// token that v accepts. Without a validator the echo service is open. It is
// safe for concurrent use.
func WithValidator(v TokenValidator) AdminOption {
	return func(c *adminConfig) error {
		if v == nil {
			return errors.New("testserver: WithValidator: nil validator")
		}
		c.validator = v
		return nil
	}
}

// WithHeaderKey sets the metadata key the echo service reads
// "Bearer <token>" from (default DefaultHeaderKey). Keys are compared
// case-insensitively, as gRPC lowercases them. It is safe for concurrent
// use.
func WithHeaderKey(key string) AdminOption {
	return func(c *adminConfig) error {
		key = strings.ToLower(strings.TrimSpace(key))
		if key == "" {
			return errors.New("testserver: WithHeaderKey: empty key")
		}
		c.headerKey = key
		return nil
	}
}

// WithOAuth2Metadata sets the answer of GetOAuth2Metadata (default: an
// empty message). The message is copied. It is safe for concurrent use.
func WithOAuth2Metadata(m *authmetapb.OAuth2MetadataResponse) AdminOption {
	return func(c *adminConfig) error {
		c.oauth2 = m
		return nil
	}
}

// WithPublicClientConfig sets the answer of GetPublicClientConfig (default:
// an empty message). The message is copied. It is safe for concurrent use.
func WithPublicClientConfig(p *authmetapb.PublicClientAuthConfigResponse) AdminOption {
	return func(c *adminConfig) error {
		c.public = p
		return nil
	}
}

type errBox struct{ err error }

// AdminServer is a fake FlyteAdmin: a gRPC server with the anonymous
// AuthMetadataService and a protected echo service (EchoServiceName). All
// its methods are safe for concurrent use, including the knobs, which take
// effect on the next call.
type AdminServer struct {
	grpcSrv   *grpc.Server
	lis       net.Listener
	buf       *bufconn.Listener // nil on TCP
	addr      string
	ca        *CA
	validator TokenValidator
	headerKey string
	served    chan struct{} // closed when Serve returns
	closed    chan struct{} // closed by Close; ends metadata latency
	closeOnce sync.Once

	oauth2      atomic.Pointer[authmetapb.OAuth2MetadataResponse]
	public      atomic.Pointer[authmetapb.PublicClientAuthConfigResponse]
	metaErr     atomic.Pointer[errBox]
	echoErr     atomic.Pointer[errBox]
	metaLatency atomic.Int64 // time.Duration
	requireAuth atomic.Bool
	rejectAll   atomic.Bool
	failAfter   atomic.Int64

	oauth2Calls  atomic.Int64
	publicCalls  atomic.Int64
	echoCalls    atomic.Int64
	rejected     atomic.Int64
	metaSawToken atomic.Bool

	mu          sync.Mutex // guards lastEchoMD and metaHeaders
	lastEchoMD  metadata.MD
	metaHeaders []metadata.MD
}

// NewAdminServer starts an admin server. It is safe for concurrent use.
func NewAdminServer(opts ...AdminOption) (*AdminServer, error) {
	cfg := adminConfig{headerKey: DefaultHeaderKey}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	s := &AdminServer{
		ca:        cfg.ca,
		validator: cfg.validator,
		headerKey: cfg.headerKey,
		served:    make(chan struct{}),
		closed:    make(chan struct{}),
	}
	s.SetOAuth2Metadata(cfg.oauth2)
	s.SetPublicClientConfig(cfg.public)
	s.requireAuth.Store(true)

	var serverOpts []grpc.ServerOption
	if cfg.ca != nil {
		tlsCfg, err := cfg.ca.ServerTLSConfig()
		if err != nil {
			return nil, err
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	if cfg.tcp {
		addr := cfg.tcpAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("testserver: listen: %w", err)
		}
		s.lis, s.addr = lis, lis.Addr().String()
	} else {
		s.buf = bufconn.Listen(bufconnSize)
		s.lis, s.addr = s.buf, BufconnTarget
	}

	if cfg.blanket {
		serverOpts = append(serverOpts, grpc.ChainUnaryInterceptor(s.blanketAuthorization))
	}
	s.grpcSrv = grpc.NewServer(serverOpts...)
	authmetarpc1.RegisterAuthMetadataServiceServer(s.grpcSrv, authMetadataService{s})
	s.grpcSrv.RegisterService(&echoServiceDesc, s)
	if !cfg.noIdentity {
		s.grpcSrv.RegisterService(&identityServiceDesc, s)
	}
	go func() {
		defer close(s.served)
		_ = s.grpcSrv.Serve(s.lis)
	}()
	return s, nil
}

// Addr returns the grpc.NewClient target of the server: BufconnTarget on
// bufconn, "127.0.0.1:port" on TCP. It is safe for concurrent use.
func (s *AdminServer) Addr() string { return s.addr }

// Dialer returns the dialer of the bufconn listener, for
// grpc.WithContextDialer; nil on TCP. It is safe for concurrent use.
func (s *AdminServer) Dialer() func(context.Context, string) (net.Conn, error) {
	if s.buf == nil {
		return nil
	}
	return func(ctx context.Context, _ string) (net.Conn, error) {
		return s.buf.DialContext(ctx)
	}
}

// DialOptions returns what a client needs to reach the server: the bufconn
// dialer (on bufconn) and transport credentials, TLS trusting the CA when
// the server serves TLS, else insecure. It is safe for concurrent use.
func (s *AdminServer) DialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if d := s.Dialer(); d != nil {
		opts = append(opts, grpc.WithContextDialer(d))
	}
	if s.ca != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(s.ca.ClientTLSConfig())))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	return opts
}

// Close stops the server, ending calls in flight, and waits until it has
// stopped serving. It may be called more than once. It is safe for
// concurrent use.
func (s *AdminServer) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.grpcSrv.Stop()
		<-s.served
	})
}

// SetOAuth2Metadata sets the answer of GetOAuth2Metadata; nil means an
// empty message. The message is copied. It is safe for concurrent use.
func (s *AdminServer) SetOAuth2Metadata(m *authmetapb.OAuth2MetadataResponse) {
	if m == nil {
		m = &authmetapb.OAuth2MetadataResponse{}
	}
	s.oauth2.Store(proto.CloneOf(m))
}

// SetPublicClientConfig sets the answer of GetPublicClientConfig; nil means
// an empty message. The message is copied. It is safe for concurrent use.
func (s *AdminServer) SetPublicClientConfig(p *authmetapb.PublicClientAuthConfigResponse) {
	if p == nil {
		p = &authmetapb.PublicClientAuthConfigResponse{}
	}
	s.public.Store(proto.CloneOf(p))
}

// SetMetadataError makes both AuthMetadataService RPCs fail with err (use a
// status error, such as status.Error(codes.Unavailable, "...")); nil makes
// them answer again. It is safe for concurrent use.
func (s *AdminServer) SetMetadataError(err error) {
	if err == nil {
		s.metaErr.Store(nil)
		return
	}
	s.metaErr.Store(&errBox{err: err})
}

// SetMetadataLatency delays both AuthMetadataService RPCs by d; the delay
// ends early when the call is cancelled or the server closes. Zero or
// negative disables it. It is safe for concurrent use.
func (s *AdminServer) SetMetadataLatency(d time.Duration) { s.metaLatency.Store(int64(max(d, 0))) }

// SetRequireAuth turns token validation of the echo service off (false) or
// back on (true, the default). Without a validator the echo service is open
// either way. It is safe for concurrent use.
func (s *AdminServer) SetRequireAuth(on bool) { s.requireAuth.Store(on) }

// SetRejectAll makes the echo service answer codes.Unauthenticated to every
// call and stream, whatever the token, and end open Bidi streams at their
// next message. It is safe for concurrent use.
func (s *AdminServer) SetRejectAll(on bool) { s.rejectAll.Store(on) }

// SetEchoError makes every echo call and stream that gets past the
// credential check end with err, as a service that relays the error of an
// upstream call does; nil restores normal answers. The call counts in
// EchoCalls. It is safe for concurrent use.
func (s *AdminServer) SetEchoError(err error) {
	if err == nil {
		s.echoErr.Store(nil)
		return
	}
	s.echoErr.Store(&errBox{err: err})
}

// SetStreamFailAfter makes ServerStream and Bidi calls that start later end
// with codes.Unauthenticated right after sending their n-th response; a
// ServerStream sends only 3, so n > 3 never triggers. n <= 0 disables it.
// It is safe for concurrent use.
func (s *AdminServer) SetStreamFailAfter(n int) { s.failAfter.Store(int64(max(n, 0))) }

// MetadataCalls returns how many GetOAuth2Metadata and GetPublicClientConfig
// calls arrived, failed or not. It is safe for concurrent use.
func (s *AdminServer) MetadataCalls() (oauth2Metadata, publicClientConfig int64) {
	return s.oauth2Calls.Load(), s.publicCalls.Load()
}

// EchoCalls returns how many echo calls and streams started, authorized or
// not. It is safe for concurrent use.
func (s *AdminServer) EchoCalls() int64 { return s.echoCalls.Load() }

// Rejected returns how many codes.Unauthenticated answers the echo service
// gave. It is safe for concurrent use.
func (s *AdminServer) Rejected() int64 { return s.rejected.Load() }

// LastEchoMetadata returns a copy of the incoming metadata of the latest
// echo call or stream, or nil. It is safe for concurrent use.
func (s *AdminServer) LastEchoMetadata() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastEchoMD == nil {
		return nil
	}
	return s.lastEchoMD.Copy()
}

// MetadataRPCHeaders returns copies of the incoming metadata of the
// AuthMetadataService calls, oldest first (at most the latest 64). It is
// safe for concurrent use.
func (s *AdminServer) MetadataRPCHeaders() []metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metadata.MD, len(s.metaHeaders))
	for i, md := range s.metaHeaders {
		out[i] = md.Copy()
	}
	return out
}

// MetadataRPCsSawToken reports whether any AuthMetadataService call carried
// a credential: the configured header key, or any value that starts with
// "Bearer ". These RPCs are anonymous, so a correct client never sends one.
// It is safe for concurrent use.
func (s *AdminServer) MetadataRPCsSawToken() bool { return s.metaSawToken.Load() }

// ResetCounters zeroes every counter and forgets the recorded metadata. It
// is safe for concurrent use.
func (s *AdminServer) ResetCounters() {
	s.oauth2Calls.Store(0)
	s.publicCalls.Store(0)
	s.echoCalls.Store(0)
	s.rejected.Store(0)
	s.metaSawToken.Store(false)
	s.mu.Lock()
	s.lastEchoMD = nil
	s.metaHeaders = nil
	s.mu.Unlock()
}

// authMetadataService serves AuthMetadataService for an AdminServer.
type authMetadataService struct{ s *AdminServer }

func (a authMetadataService) GetOAuth2Metadata(ctx context.Context, _ *authmetapb.OAuth2MetadataRequest) (*authmetapb.OAuth2MetadataResponse, error) {
	a.s.oauth2Calls.Add(1)
	if err := a.s.metadataCall(ctx); err != nil {
		return nil, err
	}
	return proto.CloneOf(a.s.oauth2.Load()), nil
}

func (a authMetadataService) GetPublicClientConfig(ctx context.Context, _ *authmetapb.PublicClientAuthConfigRequest) (*authmetapb.PublicClientAuthConfigResponse, error) {
	a.s.publicCalls.Add(1)
	if err := a.s.metadataCall(ctx); err != nil {
		return nil, err
	}
	return proto.CloneOf(a.s.public.Load()), nil
}

// metadataCall records the call's metadata, waits out the latency and
// returns the configured error.
func (s *AdminServer) metadataCall(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if s.carriesCredential(md) {
		s.metaSawToken.Store(true)
	}
	s.mu.Lock()
	s.metaHeaders = append(s.metaHeaders, md.Copy())
	if n := len(s.metaHeaders); n > maxRecordedHeaders {
		s.metaHeaders = append([]metadata.MD(nil), s.metaHeaders[n-maxRecordedHeaders:]...)
	}
	s.mu.Unlock()

	if d := time.Duration(s.metaLatency.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.closed:
			return status.Error(codes.Unavailable, "testserver: server closing")
		}
	}
	if box := s.metaErr.Load(); box != nil {
		return box.err
	}
	return nil
}

func (s *AdminServer) carriesCredential(md metadata.MD) bool {
	if len(md.Get(s.headerKey)) > 0 {
		return true
	}
	for _, vs := range md {
		for _, v := range vs {
			if hasBearerPrefix(v) {
				return true
			}
		}
	}
	return false
}

// admit starts an echo call: it counts and records the call, then checks
// its credential.
func (s *AdminServer) admit(ctx context.Context) error {
	s.echoCalls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.lastEchoMD = md.Copy()
	s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if box := s.echoErr.Load(); box != nil {
		return box.err
	}
	return nil
}

// check returns a codes.Unauthenticated error saying why the call's
// credential is not acceptable, or nil. The message never contains the
// token.
func (s *AdminServer) check(ctx context.Context) error {
	if s.rejectAll.Load() {
		return s.reject("all calls are rejected (SetRejectAll)")
	}
	if s.validator == nil || !s.requireAuth.Load() {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get(s.headerKey)
	switch {
	case len(values) == 0:
		return s.reject("missing %q header", s.headerKey)
	case len(values) > 1:
		return s.reject("%d values for the %q header, want 1", len(values), s.headerKey)
	case !hasBearerPrefix(values[0]):
		return s.reject("the %q header is not a Bearer credential", s.headerKey)
	}
	token := strings.TrimSpace(values[0][len(bearerPrefix):])
	if token == "" {
		return s.reject("empty Bearer token in the %q header", s.headerKey)
	}
	if _, err := s.validator.Validate(ctx, token); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return status.FromContextError(ctxErr).Err()
		}
		return s.reject("invalid Bearer token: %s", strings.ReplaceAll(err.Error(), token, "<redacted>"))
	}
	return nil
}

// reject counts and builds a codes.Unauthenticated error.
func (s *AdminServer) reject(format string, args ...any) error {
	s.rejected.Add(1)
	return status.Errorf(codes.Unauthenticated, "testserver: "+format, args...)
}

func hasBearerPrefix(v string) bool {
	return len(v) >= len(bearerPrefix) && strings.EqualFold(v[:len(bearerPrefix)], bearerPrefix)
}
