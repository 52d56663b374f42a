package interceptor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// This file is Flyte's proxyCommand: a second credential, for an
// identity-aware proxy (such as Google's IAP) in front of FlyteAdmin, sent
// on every gRPC call and every HTTP request, and refreshed when the proxy,
// not the service behind it, refuses it.
//
// Telling the proxy's refusal from the service's:
//
//   - gRPC: a proxy refuses a call before any gRPC server sees it, with a
//     plain HTTP 401 or 407 answer. grpc-go reports such an answer, which
//     no gRPC server gives (a gRPC server answers HTTP 200 and a
//     grpc-status), as codes.Unauthenticated (401) or codes.Unknown (407)
//     with a message that starts "unexpected HTTP status code received from
//     server: 401" (or 407). That is the rule (IsProxyRejection); a
//     codes.Unauthenticated from FlyteAdmin itself is left to the OAuth2
//     interceptors.
//   - HTTP: a 407 Proxy Authentication Required, or a 401 that carries a
//     Proxy-Authenticate challenge (IsProxyRejectedResponse). A 401 without
//     one is the token endpoint's or the HTTP API's own answer. A proxy
//     whose 401 carries no challenge is still served: its token, a JWT, is
//     refreshed at its expiry by the authenticator.

// httpStatusPrefix starts the message grpc-go gives a call whose answer was
// an HTTP error rather than a gRPC response.
const httpStatusPrefix = "unexpected HTTP status code received from server: "

// IsProxyRejection reports whether err is a proxy's refusal of a gRPC
// call: an HTTP 401 or 407 answer instead of a gRPC response, which only a
// proxy in front of the server gives.
func IsProxyRejection(err error) bool {
	st, ok := status.FromError(err)
	if !ok || (st.Code() != codes.Unauthenticated && st.Code() != codes.Unknown) {
		return false
	}
	rest, ok := strings.CutPrefix(st.Message(), httpStatusPrefix)
	return ok && (strings.HasPrefix(rest, "401 ") || strings.HasPrefix(rest, "407 "))
}

// IsProxyRejectedResponse reports whether resp is a proxy's refusal of an
// HTTP request: a 407, or a 401 that carries a Proxy-Authenticate header.
func IsProxyRejectedResponse(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusProxyAuthRequired:
		return true
	case http.StatusUnauthorized:
		return resp.Header.Get("Proxy-Authenticate") != ""
	}
	return false
}

// ProxyCredentialError reports that no proxy credential could be got,
// such as when the proxyCommand fails. A call that had none yet is not
// sent and fails with it (status.Code reports codes.Unauthenticated); a
// call the proxy refused fails with a *RefreshError that wraps it. errors.As
// reaches the cause, such as an *authenticator.CommandError.
type ProxyCredentialError struct {
	// Err is why no credential could be got.
	Err error
}

// Error says why no proxy credential could be got.
func (e *ProxyCredentialError) Error() string {
	return fmt.Sprintf("grpcauth: getting the proxy credential failed: %v", e.Err)
}

// Unwrap returns the cause.
func (e *ProxyCredentialError) Unwrap() error { return e.Err }

// GRPCStatus makes status.Code report codes.Unauthenticated, with Error()
// as the message.
func (e *ProxyCredentialError) GRPCStatus() *status.Status {
	return status.New(codes.Unauthenticated, e.Error())
}

// IsProxyFailure reports whether err is the proxy's doing: its refusal
// (IsProxyRejection), or a failure to get a proxy credential
// (*ProxyCredentialError anywhere in the chain). Refreshing the OAuth2
// token cannot help such a call: the OAuth2 interceptors should return err
// as it is.
func IsProxyFailure(err error) bool {
	var pe *ProxyCredentialError
	return IsProxyRejection(err) || errors.As(err, &pe)
}

// proxyAuth is what one proxy interceptor or transport shares across its
// calls.
type proxyAuth struct {
	a  authenticator.Authenticator
	rr authenticator.RejectionRefresher    // a, when it implements it
	ac interface{ Accepted(value string) } // a, when it implements it
	o  *options
}

func newProxyAuth(a authenticator.Authenticator, opts []Option) *proxyAuth {
	p := &proxyAuth{a: a, o: newOptions(opts)}
	p.rr, _ = a.(authenticator.RejectionRefresher)
	p.ac, _ = a.(interface{ Accepted(value string) })
	return p
}

// passed tells the authenticator (an authenticator.Keeper) that the proxy
// let a request with value through, unless err is the proxy's refusal:
// that ends the Keeper's backoff from a proxy that refuses fresh tokens.
func (p *proxyAuth) passed(value string, err error) {
	if p.ac != nil && value != "" && !IsProxyRejection(err) {
		p.ac.Accepted(value)
	}
}

// credential returns the proxy credential to send. When none is held yet
// (the first call), it gets one first, rather than send a call the proxy
// is sure to refuse.
func (p *proxyAuth) credential(ctx context.Context) (key, value string, err error) {
	if key, value, ok := p.a.FetchGRPCCallAuthMetadata(ctx); ok {
		return key, value, nil
	}
	if err := p.refreshValue(ctx, ""); err != nil {
		return "", "", &ProxyCredentialError{Err: err}
	}
	key, value, ok := p.a.FetchGRPCCallAuthMetadata(ctx)
	if !ok {
		return "", "", &ProxyCredentialError{Err: errors.New("the authenticator holds no credential after a successful refresh")}
	}
	return key, value, nil
}

// refreshValue gets a new credential to replace value ("" when none was
// held): one refresh for all the calls that saw value refused.
func (p *proxyAuth) refreshValue(ctx context.Context, value string) error {
	if p.rr != nil {
		return p.rr.RefreshRejected(ctx, value)
	}
	return p.a.RefreshCredentials(ctx)
}

// attach adds the proxy credential to a call as per-RPC credentials, which
// see the transport the call uses and withhold the credential from one
// without security (unless WithInsecure).
func (p *proxyAuth) attach(ctx context.Context, opts []grpc.CallOption) ([]grpc.CallOption, *proxyCreds, error) {
	key, value, err := p.credential(ctx)
	if err != nil {
		return nil, nil, err
	}
	c := &proxyCreds{p: p, key: key, value: value, inner: innerCreds(opts)}
	return append(opts[:len(opts):len(opts)], grpc.PerRPCCredentials(c)), c, nil
}

// innerCreds returns the per-RPC credentials that opts already carry (the
// OAuth2 interceptor's, or the caller's). gRPC keeps only the last
// PerRPCCredentials option of a call, so the proxy credential, added
// last, must send them too.
func innerCreds(opts []grpc.CallOption) credentials.PerRPCCredentials {
	for i := len(opts) - 1; i >= 0; i-- {
		switch o := opts[i].(type) {
		case *callCreds:
			return o
		case grpc.PerRPCCredsCallOption:
			return o.Creds
		case *grpc.PerRPCCredsCallOption:
			return o.Creds
		}
	}
	return nil
}

// refresh gets a new proxy credential after the proxy refused sent. It
// returns whether to retry, or the error for the caller.
func (p *proxyAuth) refresh(ctx context.Context, method string, sent *proxyCreds, err error) (bool, error) {
	if !IsProxyRejection(err) || ctx.Err() != nil {
		return false, err
	}
	if sent.withheld.Load() {
		return false, withheldError(err)
	}
	p.o.logger.Debug("grpcauth: the proxy refused the call, refreshing the proxy credential", "method", method)
	if rerr := p.refreshValue(ctx, sent.value); rerr != nil {
		st := status.Convert(err)
		return false, &RefreshError{Code: st.Code(), Message: st.Message(), Err: &ProxyCredentialError{Err: rerr}}
	}
	if p.o.onRetry != nil {
		p.o.onRetry(method, status.Code(err))
	}
	return true, nil
}

// proxyCreds sends the proxy credential of one attempt, and the per-RPC
// credentials the call already carried (inner).
type proxyCreds struct {
	p          *proxyAuth
	key, value string
	inner      credentials.PerRPCCredentials
	withheld   atomic.Bool // set by GetRequestMetadata before the call goes out
}

func (c *proxyCreds) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	var md map[string]string
	if c.inner != nil {
		var err error
		if md, err = c.inner.GetRequestMetadata(ctx, uri...); err != nil {
			return nil, err
		}
	}
	if !c.p.o.insecure {
		if secure, method := transportsec.SecureContext(ctx); !secure {
			c.withheld.Store(true)
			c.p.o.logger.Warn("grpcauth: not sending the proxy credential: the connection has no transport security; use TLS, or WithInsecure for a plaintext development cluster", "method", method)
			return md, nil
		}
	}
	out := make(map[string]string, len(md)+1)
	for k, v := range md {
		out[k] = v
	}
	out[c.key] = c.value
	return out, nil
}

// sentValue is the value that went out, "" if it was withheld.
func (c *proxyCreds) sentValue() string {
	if c.withheld.Load() {
		return ""
	}
	return c.value
}

// RequireTransportSecurity is false so that gRPC does not fail the call on
// an insecure connection: GetRequestMetadata withholds the credential. It
// is true only when the inner credentials require it.
func (c *proxyCreds) RequireTransportSecurity() bool {
	return c.inner != nil && c.inner.RequireTransportSecurity()
}

// ProxyUnaryClientInterceptor returns an interceptor that sends a's
// credential, the proxy token of Flyte's proxyCommand, on every unary call
// (AuthMetadataService's included: the proxy stands in front of them too)
// and, when the proxy refuses the call (see IsProxyRejection), refreshes
// the credential and sends the call again once. Give a an authenticator
// whose header key is "proxy-authorization".
//
// Install it after (inside) the OAuth2 interceptors, so that it sees the
// proxy's refusal first:
//
//	grpc.WithChainUnaryInterceptor(interceptor.UnaryClientInterceptor(auth), interceptor.ProxyUnaryClientInterceptor(proxy))
//
// Of the options, WithInsecure, WithLogger and WithOnRetry apply;
// WithRefreshCodes and WithSkipMethods do not (the proxy's refusal is told
// by its answer, not its code, and no method passes the proxy without its
// credential). It is safe for concurrent use. With a nil a (or an a
// holding a nil pointer), every call fails with codes.Internal.
func ProxyUnaryClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.UnaryClientInterceptor {
	if nilcheck.Nil(a) {
		return func(context.Context, string, any, any, *grpc.ClientConn, grpc.UnaryInvoker, ...grpc.CallOption) error {
			return missingAuthenticator
		}
	}
	p := newProxyAuth(a, opts)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		aopts, sent, err := p.attach(ctx, callOpts)
		if err != nil {
			return err
		}
		err = invoker(ctx, method, req, reply, cc, aopts...)
		if err == nil {
			p.passed(sent.sentValue(), nil)
			return nil
		}
		if retry, err := p.refresh(ctx, method, sent, err); !retry {
			p.passed(sent.sentValue(), err)
			return err
		}
		if aopts, sent, err = p.attach(ctx, callOpts); err != nil {
			return err
		}
		err = invoker(ctx, method, req, reply, cc, aopts...)
		p.passed(sent.sentValue(), err)
		return err
	}
}

// ProxyStreamClientInterceptor is ProxyUnaryClientInterceptor for
// streams. A proxy refuses a stream before the server sees it, so the
// refusal comes before any response: at stream creation, at Header or at
// the first RecvMsg. The stream is then opened again with a new credential
// and what the caller had sent is replayed (up to WithMaxReplay messages;
// past that, the refusal is returned). WithMaxReplay applies besides the
// options ProxyUnaryClientInterceptor names. It is safe for concurrent use.
func ProxyStreamClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.StreamClientInterceptor {
	if nilcheck.Nil(a) {
		return func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, grpc.Streamer, ...grpc.CallOption) (grpc.ClientStream, error) {
			return nil, missingAuthenticator
		}
	}
	p := newProxyAuth(a, opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		s := &proxyStream{p: p, ctx: ctx, desc: desc, cc: cc, method: method, streamer: streamer, callOpts: callOpts, canRetry: true}
		cs, sent, err := s.open()
		if err != nil {
			if sent == nil {
				return nil, err
			}
			retry, err := p.refresh(ctx, method, sent, err)
			if !retry {
				return nil, err
			}
			if cs, _, err = s.open(); err != nil {
				return nil, err
			}
			s.canRetry = false
		}
		s.cs, s.sent = cs, sent
		return s, nil
	}
}

// proxyStream is the ClientStream handed to the caller: it forwards to the
// current stream and replaces it at most once, replaying what was sent,
// when the proxy refused it.
type proxyStream struct {
	p *proxyAuth
	// ctx is the caller's context for the call, kept to open the stream
	// again on a retry, as gRPC keeps it in its own streams.
	ctx      context.Context
	desc     *grpc.StreamDesc
	cc       *grpc.ClientConn
	method   string
	streamer grpc.Streamer
	callOpts []grpc.CallOption

	mu       sync.Mutex // guards the fields below; held during a retry
	cs       grpc.ClientStream
	sent     *proxyCreds
	msgs     []any // messages sent, kept for a replay while canRetry
	closed   bool  // CloseSend was called
	canRetry bool  // no retry yet, no response yet, msgs within bound
	pending  error // the refusal Header found, for RecvMsg to return
	acked    bool  // the authenticator was told the proxy let the stream through
}

func (s *proxyStream) open() (grpc.ClientStream, *proxyCreds, error) {
	opts, sent, err := s.p.attach(s.ctx, s.callOpts)
	if err != nil {
		return nil, nil, err
	}
	cs, err := s.streamer(s.ctx, s.desc, s.cc, s.method, opts...)
	return cs, sent, err
}

func (s *proxyStream) current() grpc.ClientStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cs
}

// SendMsg sends m and keeps it for a replay while a retry is possible.
// When the stream has already ended (io.EOF) and a retry is still
// possible, m is kept and nil returned: RecvMsg learns why the stream ended.
func (s *proxyStream) SendMsg(m any) error {
	s.mu.Lock()
	if s.canRetry {
		limit := s.p.o.maxReplay
		if !s.desc.ClientStreams {
			limit = 1
		}
		if len(s.msgs) < limit {
			s.msgs = append(s.msgs, m)
		} else {
			s.canRetry, s.msgs = false, nil
		}
	}
	cs, kept := s.cs, s.canRetry
	s.mu.Unlock()
	err := cs.SendMsg(m)
	if errors.Is(err, io.EOF) && kept {
		return nil
	}
	return err
}

// CloseSend closes the sending side of the current stream, and of the new
// one should the call be retried.
func (s *proxyStream) CloseSend() error {
	s.mu.Lock()
	s.closed = true
	cs := s.cs
	s.mu.Unlock()
	return cs.CloseSend()
}

// RecvMsg receives from the current stream; a refusal by the proxy before
// any response leads to one retry on a new stream.
func (s *proxyStream) RecvMsg(m any) error {
	for {
		s.mu.Lock()
		cs, pending := s.cs, s.pending
		s.mu.Unlock()
		if pending != nil {
			return pending
		}
		err := cs.RecvMsg(m)
		s.mu.Lock()
		if err == nil {
			if !s.acked {
				s.acked = true
				s.p.passed(s.sent.sentValue(), nil)
			}
			s.canRetry, s.msgs = false, nil
			s.mu.Unlock()
			return nil
		}
		if cs != s.cs { // another goroutine retried meanwhile
			s.mu.Unlock()
			continue
		}
		err = s.retryLocked(err)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// Header returns the header of the stream that serves the call, retrying
// first if the proxy refused the stream. Anything else is reported as gRPC
// reports it: an error from Header as it came, and the status of a stream
// that ended before its header by RecvMsg, with (nil, nil) here.
func (s *proxyStream) Header() (metadata.MD, error) {
	for {
		cs := s.current()
		md, headerErr := cs.Header()
		if md != nil {
			s.mu.Lock()
			if !s.acked {
				s.acked = true
				s.p.passed(s.sent.sentValue(), nil)
			}
			s.mu.Unlock()
			return md, headerErr
		}
		s.mu.Lock()
		if cs != s.cs {
			s.mu.Unlock()
			continue
		}
		if !s.canRetry {
			s.mu.Unlock()
			return md, headerErr
		}
		err := headerErr
		if err == nil {
			// The stream ended before a header; its status waits for
			// RecvMsg. Such a stream carries no message, so asking for
			// its status consumes nothing.
			if err = cs.RecvMsg(new(emptypb.Empty)); err == nil || errors.Is(err, io.EOF) {
				s.mu.Unlock()
				return nil, nil
			}
		}
		if !IsProxyRejection(err) {
			if headerErr == nil {
				s.pending = err // for RecvMsg, as gRPC would report it
			}
			s.mu.Unlock()
			return nil, headerErr
		}
		if rerr := s.retryLocked(err); rerr != nil {
			s.pending = rerr
			s.mu.Unlock()
			if headerErr == nil {
				return nil, nil
			}
			return nil, rerr
		}
		s.mu.Unlock()
	}
}

// Trailer returns the trailer of the stream that serves the call.
func (s *proxyStream) Trailer() metadata.MD { return s.current().Trailer() }

// Context returns the context of the stream that serves the call.
func (s *proxyStream) Context() context.Context { return s.current().Context() }

// retryLocked opens the stream again after err, if the proxy refused it
// and a retry is still possible, and replays what was sent. It returns nil
// when the call now runs on the new stream, else the error for the
// caller. s.mu is held.
func (s *proxyStream) retryLocked(err error) error {
	if errors.Is(err, io.EOF) || !s.canRetry {
		return err
	}
	s.canRetry = false
	msgs := s.msgs
	s.msgs = nil
	retry, err := s.p.refresh(s.ctx, s.method, s.sent, err)
	if !retry {
		return err
	}
	cs, sent, err := s.open()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := cs.SendMsg(m); err != nil {
			break // the new stream ended too; its RecvMsg says why
		}
	}
	if s.closed {
		_ = cs.CloseSend()
	}
	s.cs, s.sent = cs, sent
	return nil
}

// ProxyTransport returns an http.RoundTripper that adds a's credential,
// as "Proxy-Authorization: Bearer <token>", to every request it sends
// through base (http.DefaultTransport when nil): token requests and calls
// of FlyteAdmin's HTTP API. When the proxy refuses a request (see
// IsProxyRejectedResponse), it refreshes the credential and sends the
// request again once, if its body can be read again (a nil body, or
// http.Request.GetBody set, as http.NewRequest sets it).
//
// The credential goes only to https:// URLs and to http:// on a loopback
// host, unless WithInsecure is given; WithLogger and WithOnRetry apply too.
// It is safe for concurrent use.
func ProxyTransport(a authenticator.Authenticator, base http.RoundTripper, opts ...Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &proxyTransport{p: newProxyAuth(a, opts), base: base}
}

type proxyTransport struct {
	p    *proxyAuth
	base http.RoundTripper
}

// RoundTrip sends r with the proxy credential, and again once with a new
// one if the proxy refused it.
func (t *proxyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	closeBody := func(b io.ReadCloser) {
		if b != nil {
			_ = b.Close()
		}
	}
	if nilcheck.Nil(t.p.a) {
		closeBody(r.Body)
		return nil, errors.New("grpcauth: proxy transport built with a nil authenticator")
	}
	if !t.p.o.insecure && !secureURL(r) {
		t.p.o.logger.Warn("grpcauth: not sending the proxy credential over plain http to a host that is not loopback; use https, or WithInsecure", "host", r.URL.Host)
		return t.base.RoundTrip(r)
	}
	ctx := r.Context()
	key, value, err := t.p.credential(ctx)
	if err != nil {
		closeBody(r.Body)
		return nil, err
	}
	resp, err := t.base.RoundTrip(withHeader(r, r.Body, key, value))
	if err != nil {
		return nil, err
	}
	if !IsProxyRejectedResponse(resp) {
		t.p.passed(value, nil)
		return resp, nil
	}
	if ctx.Err() != nil {
		return resp, nil
	}
	body := r.Body
	if body != nil && body != http.NoBody {
		if r.GetBody == nil {
			return resp, nil // it cannot be sent again
		}
		if body, err = r.GetBody(); err != nil {
			return resp, nil
		}
	}
	t.p.o.logger.Debug("grpcauth: the proxy refused an HTTP request, refreshing the proxy credential", "status", resp.StatusCode, "host", r.URL.Host)
	if err := t.p.refreshValue(ctx, value); err != nil {
		closeBody(body)
		t.p.o.logger.Warn("grpcauth: refreshing the proxy credential failed", "host", r.URL.Host, "error", err)
		return resp, nil // the refusal, as the proxy gave it
	}
	if key, value, err = t.p.credential(ctx); err != nil {
		closeBody(body)
		return resp, nil
	}
	// Read a little of the refusal, so that its connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if t.p.o.onRetry != nil {
		t.p.o.onRetry(r.URL.Path, codes.Unauthenticated)
	}
	resp, err = t.base.RoundTrip(withHeader(r, body, key, value))
	if err == nil && !IsProxyRejectedResponse(resp) {
		t.p.passed(value, nil)
	}
	return resp, err
}

// withHeader returns a copy of r with body and the header key: value.
func withHeader(r *http.Request, body io.ReadCloser, key, value string) *http.Request {
	out := r.Clone(r.Context())
	out.Body = body
	out.Header.Set(key, value)
	return out
}

// secureURL reports whether r goes over TLS or stays on this machine.
func secureURL(r *http.Request) bool {
	if strings.EqualFold(r.URL.Scheme, "https") {
		return true
	}
	return transportsec.LoopbackHost(r.URL.Hostname())
}
