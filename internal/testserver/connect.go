package testserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// WellKnownPath is where a ConnectServer serves its OAuth2 metadata as an
// RFC 8414 document, as Flyte 2 does. Being a constant, it is safe for
// concurrent use.
const WellKnownPath = "/.well-known/oauth-authorization-server"

// ConnectOption configures a ConnectServer. Options are pure values, safe
// for concurrent use.
type ConnectOption func(*connectConfig) error

type connectConfig struct {
	ca        *CA
	open      bool
	validator TokenValidator
	headerKey string
	oauth2    *flyte2pb.GetOAuth2MetadataResponse
	public    *flyte2pb.GetPublicClientConfigResponse
}

// WithConnectTLS serves HTTPS (HTTP/2 and HTTP/1.1) with a certificate
// signed by ca. Default: plaintext HTTP/1.1 and HTTP/2 without TLS (h2c)
// on loopback.
func WithConnectTLS(ca *CA) ConnectOption {
	return func(c *connectConfig) error {
		if ca == nil {
			return errors.New("testserver: WithConnectTLS: nil CA")
		}
		c.ca = ca
		return nil
	}
}

// WithConnectOpen makes the echo service accept every call, with or
// without a token, as the baseline of benchmarks. Default: a bearer token
// is required.
func WithConnectOpen() ConnectOption {
	return func(c *connectConfig) error {
		c.open = true
		return nil
	}
}

// WithConnectValidator makes the echo service accept only bearer tokens v
// accepts. Default: any non-empty bearer token.
func WithConnectValidator(v TokenValidator) ConnectOption {
	return func(c *connectConfig) error {
		c.validator = v
		return nil
	}
}

// WithConnectHeaderKey sets the HTTP header the echo service reads the
// bearer token from. Default: DefaultHeaderKey.
func WithConnectHeaderKey(key string) ConnectOption {
	return func(c *connectConfig) error {
		if strings.TrimSpace(key) == "" {
			return errors.New("testserver: WithConnectHeaderKey: empty key")
		}
		c.headerKey = key
		return nil
	}
}

// WithFlyte2Metadata sets what GetOAuth2Metadata answers (and what the
// well-known document says, in proto3 JSON as Flyte 2 writes it). Default:
// an empty message.
func WithFlyte2Metadata(m *flyte2pb.GetOAuth2MetadataResponse) ConnectOption {
	return func(c *connectConfig) error {
		c.oauth2 = m
		return nil
	}
}

// WithFlyte2PublicConfig sets what GetPublicClientConfig answers. Default:
// an empty message.
func WithFlyte2PublicConfig(p *flyte2pb.GetPublicClientConfigResponse) ConnectOption {
	return func(c *connectConfig) error {
		c.public = p
		return nil
	}
}

// ConnectServer is a fake Flyte 2 backend made with connect-go: it serves
// flyteidl2.auth.AuthMetadataService (anonymous), a protected echo service
// (grpcauth.testecho.v1.EchoService: unary, server-, client- and
// bidi-streaming) and the RFC 8414 document at WellKnownPath, all on one
// port, answering the Connect, gRPC and gRPC-Web protocols. All its methods
// are safe for concurrent use; knobs take effect on the next call.
type ConnectServer struct {
	srv       *httptest.Server
	ca        *CA
	open      bool
	validator TokenValidator
	headerKey string

	oauth2    atomic.Pointer[flyte2pb.GetOAuth2MetadataResponse]
	public    atomic.Pointer[flyte2pb.GetPublicClientConfigResponse]
	oauth2Err atomic.Pointer[errBox]
	rejectAll atomic.Bool
	failAfter atomic.Int64
	// distrustIdentity: trustForwardedIdentityHeaders is false.
	distrustIdentity atomic.Bool

	oauth2Calls    atomic.Int64
	publicCalls    atomic.Int64
	wellKnownCalls atomic.Int64
	echoCalls      atomic.Int64
	rejected       atomic.Int64
	metaSawToken   atomic.Bool

	mu         sync.Mutex // guards the fields below
	echoValues []string   // the header values echo calls carried, "" for none
	lastHeader http.Header
}

// NewConnectServer starts a ConnectServer on loopback. It is safe for
// concurrent use.
func NewConnectServer(opts ...ConnectOption) (*ConnectServer, error) {
	cfg := connectConfig{headerKey: DefaultHeaderKey}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	s := &ConnectServer{ca: cfg.ca, open: cfg.open, validator: cfg.validator, headerKey: cfg.headerKey}
	s.SetOAuth2Metadata(cfg.oauth2)
	s.SetPublicClientConfig(cfg.public)

	mux := http.NewServeMux()
	mux.Handle(flyte2pbconnect.NewAuthMetadataServiceHandler(connectAuthMeta{s}))
	mux.Handle(flyte2pbconnect.NewEchoServiceHandler(connectEcho{s}))
	mux.HandleFunc("GET "+WellKnownPath, s.serveWellKnown)
	mux.Handle(Flyte2UserInfoMethod, connect.NewUnaryHandler(Flyte2UserInfoMethod, s.flyte2UserInfo))

	s.srv = httptest.NewUnstartedServer(mux)
	if cfg.ca != nil {
		tlsCfg, err := cfg.ca.ServerTLSConfig()
		if err != nil {
			return nil, err
		}
		s.srv.TLS = tlsCfg
		s.srv.EnableHTTP2 = true
		s.srv.StartTLS()
	} else {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.srv.Config.Protocols = p
		s.srv.Start()
	}
	return s, nil
}

// URL returns the base URL for connect-go clients: "https://127.0.0.1:port"
// with TLS, "http://127.0.0.1:port" without.
func (s *ConnectServer) URL() string { return s.srv.URL }

// Addr returns "127.0.0.1:port", the grpc.NewClient target.
func (s *ConnectServer) Addr() string { return s.srv.Listener.Addr().String() }

// HTTPClient returns a new client that speaks HTTP/2 to the server: over
// TLS trusting the server's CA, or over plaintext (h2c) without TLS.
func (s *ConnectServer) HTTPClient() *http.Client {
	tr := &http.Transport{}
	p := new(http.Protocols)
	if s.ca != nil {
		tr.TLSClientConfig = s.ca.ClientTLSConfig()
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	tr.Protocols = p
	return &http.Client{Transport: tr}
}

// GRPCDialOptions returns the grpc-go dial options that reach the server:
// TLS trusting its CA, or plaintext.
func (s *ConnectServer) GRPCDialOptions() []grpc.DialOption {
	if s.ca != nil {
		return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(s.ca.ClientTLSConfig()))}
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
}

// Close stops the server and closes its connections.
func (s *ConnectServer) Close() { s.srv.Close() }

// SetOAuth2Metadata replaces what GetOAuth2Metadata answers.
func (s *ConnectServer) SetOAuth2Metadata(m *flyte2pb.GetOAuth2MetadataResponse) {
	if m == nil {
		m = &flyte2pb.GetOAuth2MetadataResponse{}
	}
	s.oauth2.Store(proto.CloneOf(m))
}

// SetPublicClientConfig replaces what GetPublicClientConfig answers.
func (s *ConnectServer) SetPublicClientConfig(p *flyte2pb.GetPublicClientConfigResponse) {
	if p == nil {
		p = &flyte2pb.GetPublicClientConfigResponse{}
	}
	s.public.Store(proto.CloneOf(p))
}

// SetOAuth2MetadataError makes GetOAuth2Metadata fail with err (a
// *connect.Error keeps its code; anything else is CodeUnknown), and the
// well-known document answer err's text under the HTTP status Flyte 2 gives
// its code (Unimplemented: 501); nil restores the answer. A Flyte 2
// deployment without an external identity provider answers
// connect.CodeUnimplemented.
func (s *ConnectServer) SetOAuth2MetadataError(err error) {
	if err == nil {
		s.oauth2Err.Store(nil)
		return
	}
	s.oauth2Err.Store(&errBox{err: err})
}

// SetRejectAll makes every echo call fail with CodeUnauthenticated,
// whatever it carries.
func (s *ConnectServer) SetRejectAll(on bool) { s.rejectAll.Store(on) }

// SetStreamFailAfter makes Repeat and Chat fail with CodeUnauthenticated
// after sending n messages; 0 turns it off.
func (s *ConnectServer) SetStreamFailAfter(n int) { s.failAfter.Store(int64(max(n, 0))) }

// MetadataCalls returns how many times each AuthMetadataService RPC was
// called.
func (s *ConnectServer) MetadataCalls() (oauth2Metadata, publicClientConfig int64) {
	return s.oauth2Calls.Load(), s.publicCalls.Load()
}

// WellKnownCalls returns how many times the well-known document was asked
// for.
func (s *ConnectServer) WellKnownCalls() int64 { return s.wellKnownCalls.Load() }

// EchoCalls returns how many echo calls (of any kind) arrived.
func (s *ConnectServer) EchoCalls() int64 { return s.echoCalls.Load() }

// Rejected returns how many echo calls were rejected.
func (s *ConnectServer) Rejected() int64 { return s.rejected.Load() }

// MetadataRPCsSawToken reports whether any AuthMetadataService call or
// well-known request carried a bearer token.
func (s *ConnectServer) MetadataRPCsSawToken() bool { return s.metaSawToken.Load() }

// EchoAuthValues returns the token header value of each echo call, oldest
// first ("" for a call without one), up to the last maxRecordedHeaders.
func (s *ConnectServer) EchoAuthValues() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.echoValues...)
}

// LastEchoHeader returns a copy of the request header of the last echo
// call, or nil.
func (s *ConnectServer) LastEchoHeader() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeader.Clone()
}

// ResetCounters sets every counter to zero and forgets recorded headers.
func (s *ConnectServer) ResetCounters() {
	s.oauth2Calls.Store(0)
	s.publicCalls.Store(0)
	s.wellKnownCalls.Store(0)
	s.echoCalls.Store(0)
	s.rejected.Store(0)
	s.metaSawToken.Store(false)
	s.mu.Lock()
	s.echoValues, s.lastHeader = nil, nil
	s.mu.Unlock()
}

// noteMetadataCall records whether an anonymous request carried a token.
func (s *ConnectServer) noteMetadataCall(h http.Header) {
	for _, vs := range h {
		for _, v := range vs {
			if hasBearerPrefix(v) {
				s.metaSawToken.Store(true)
			}
		}
	}
}

func (s *ConnectServer) serveWellKnown(w http.ResponseWriter, r *http.Request) {
	s.wellKnownCalls.Add(1)
	s.noteMetadataCall(r.Header)
	// As Flyte 2's runs/service OAuth2MetadataHTTPHandler: the RPC's error
	// as plain text under the HTTP status of its code, else the RPC's
	// answer in proto3 JSON (camelCase keys).
	if box := s.oauth2Err.Load(); box != nil {
		http.Error(w, box.err.Error(), httpStatusOf(box.err))
		return
	}
	body, err := protojson.Marshal(s.oauth2.Load())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// httpStatusOf maps a connect error's code to the HTTP status Flyte 2's
// well-known handler answers.
func httpStatusOf(err error) int {
	switch connect.CodeOf(err) {
	case connect.CodeUnimplemented:
		return http.StatusNotImplemented
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// admit counts and records an echo call, then checks its credential.
func (s *ConnectServer) admit(ctx context.Context, h http.Header) error {
	s.echoCalls.Add(1)
	value := h.Get(s.headerKey)
	s.mu.Lock()
	s.echoValues = append(s.echoValues, value)
	if n := len(s.echoValues); n > maxRecordedHeaders {
		s.echoValues = append([]string(nil), s.echoValues[n-maxRecordedHeaders:]...)
	}
	s.lastHeader = h.Clone()
	s.mu.Unlock()
	return s.authorize(ctx, h)
}

// authorize checks a call's credential as the deployment's ingress does.
func (s *ConnectServer) authorize(ctx context.Context, h http.Header) error {
	if s.rejectAll.Load() {
		return s.reject("all calls are rejected (SetRejectAll)")
	}
	if s.open {
		return nil
	}
	values := h.Values(s.headerKey)
	switch {
	case len(values) == 0:
		return s.reject("missing " + s.headerKey + " header")
	case len(values) > 1:
		return s.reject("more than one " + s.headerKey + " header")
	case !hasBearerPrefix(values[0]):
		return s.reject("the " + s.headerKey + " header is not a Bearer credential")
	}
	token := strings.TrimSpace(values[0][len(bearerPrefix):])
	if token == "" {
		return s.reject("empty Bearer token")
	}
	if s.validator == nil {
		return nil
	}
	if _, err := s.validator.Validate(ctx, token); err != nil {
		if ctx.Err() != nil {
			return connect.NewError(connect.CodeCanceled, ctx.Err())
		}
		return s.reject("invalid Bearer token: " + strings.ReplaceAll(err.Error(), token, "<redacted>"))
	}
	return nil
}

func (s *ConnectServer) reject(why string) error {
	s.rejected.Add(1)
	return connect.NewError(connect.CodeUnauthenticated, errors.New("testserver: "+why))
}

// failNow reports whether a stream that has sent sent messages must now
// fail.
func (s *ConnectServer) failNow(sent int) bool {
	n := s.failAfter.Load()
	return n > 0 && int64(sent) >= n
}

func (s *ConnectServer) streamFailure() error {
	s.rejected.Add(1)
	return connect.NewError(connect.CodeUnauthenticated, errors.New("testserver: stream rejected after its first messages (SetStreamFailAfter)"))
}

type connectAuthMeta struct{ s *ConnectServer }

func (a connectAuthMeta) GetOAuth2Metadata(_ context.Context, req *connect.Request[flyte2pb.GetOAuth2MetadataRequest]) (*connect.Response[flyte2pb.GetOAuth2MetadataResponse], error) {
	a.s.oauth2Calls.Add(1)
	a.s.noteMetadataCall(req.Header())
	if box := a.s.oauth2Err.Load(); box != nil {
		return nil, box.err
	}
	return connect.NewResponse(proto.CloneOf(a.s.oauth2.Load())), nil
}

func (a connectAuthMeta) GetPublicClientConfig(_ context.Context, req *connect.Request[flyte2pb.GetPublicClientConfigRequest]) (*connect.Response[flyte2pb.GetPublicClientConfigResponse], error) {
	a.s.publicCalls.Add(1)
	a.s.noteMetadataCall(req.Header())
	return connect.NewResponse(proto.CloneOf(a.s.public.Load())), nil
}

type connectEcho struct{ s *ConnectServer }

func (e connectEcho) Echo(ctx context.Context, req *connect.Request[flyte2pb.EchoRequest]) (*connect.Response[flyte2pb.EchoResponse], error) {
	if err := e.s.admit(ctx, req.Header()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&flyte2pb.EchoResponse{Value: req.Msg.GetValue()}), nil
}

func (e connectEcho) Repeat(ctx context.Context, req *connect.Request[flyte2pb.EchoRequest], stream *connect.ServerStream[flyte2pb.EchoResponse]) error {
	if err := e.s.admit(ctx, req.Header()); err != nil {
		return err
	}
	for i := range 3 {
		if e.s.failNow(i) {
			return e.s.streamFailure()
		}
		if err := stream.Send(&flyte2pb.EchoResponse{Value: req.Msg.GetValue()}); err != nil {
			return err
		}
	}
	return nil
}

func (e connectEcho) Collect(ctx context.Context, stream *connect.ClientStream[flyte2pb.EchoRequest]) (*connect.Response[flyte2pb.EchoResponse], error) {
	if err := e.s.admit(ctx, stream.RequestHeader()); err != nil {
		return nil, err
	}
	var values []string
	for stream.Receive() {
		values = append(values, stream.Msg().GetValue())
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&flyte2pb.EchoResponse{Value: strings.Join(values, ",")}), nil
}

func (e connectEcho) Chat(ctx context.Context, stream *connect.BidiStream[flyte2pb.EchoRequest, flyte2pb.EchoResponse]) error {
	if err := e.s.admit(ctx, stream.RequestHeader()); err != nil {
		return err
	}
	for sent := 0; ; sent++ {
		if e.s.failNow(sent) {
			return e.s.streamFailure()
		}
		msg, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&flyte2pb.EchoResponse{Value: msg.GetValue()}); err != nil {
			return err
		}
	}
}
