package testserver

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// ProxyAuthenticate is the Proxy-Authenticate challenge a Proxy sends with
// every refusal, 401 or 407. Being a constant, it is safe for concurrent
// use.
const ProxyAuthenticate = `Bearer realm="grpcauth-testserver-proxy"`

// ProxyOption configures a Proxy. Options are pure values, safe for
// concurrent use.
type ProxyOption func(*proxyConfig) error

type proxyConfig struct {
	ca     *CA
	status int
}

// WithProxyTLS makes the Proxy's fronts serve TLS (HTTP/2 and HTTP/1.1)
// with a leaf certificate signed by ca. The default is plaintext: HTTP/1.1
// and HTTP/2 with prior knowledge (h2c), which gRPC clients speak. It is
// safe for concurrent use.
func WithProxyTLS(ca *CA) ProxyOption {
	return func(c *proxyConfig) error {
		if ca == nil {
			return errors.New("testserver: WithProxyTLS: nil CA")
		}
		c.ca = ca
		return nil
	}
}

// WithProxyRejectStatus sets the HTTP status of a refusal:
// http.StatusUnauthorized (the default, what Google's IAP answers) or
// http.StatusProxyAuthRequired. A gRPC client sees a 401 as
// codes.Unauthenticated and a 407 as codes.Unknown, both with the message
// "unexpected HTTP status code received from server: <status> ...". It is
// safe for concurrent use.
func WithProxyRejectStatus(status int) ProxyOption {
	return func(c *proxyConfig) error {
		if status != http.StatusUnauthorized && status != http.StatusProxyAuthRequired {
			return fmt.Errorf("testserver: WithProxyRejectStatus: %d is neither 401 nor 407", status)
		}
		c.status = status
		return nil
	}
}

// Proxy is an identity-aware proxy such as Google's IAP: an HTTP front that
// passes a request on only when its Proxy-Authorization header carries
// "Bearer <token>" for a token it knows and has not expired, and refuses it
// otherwise with a plain-text 401 (or 407) and a Proxy-Authenticate
// challenge, before the backend sees anything. The header is removed from
// what is passed on. One Proxy can front several backends (FrontGRPC,
// FrontHTTP, Handler), all sharing its tokens. All its methods are safe for
// concurrent use, including the knobs, which take effect on the next
// request.
type Proxy struct {
	ca     *CA
	status int

	mu     sync.Mutex // guards the fields below
	tokens map[string]bool
	fronts []*httptest.Server
	rts    []*http.Transport
	closed bool

	passed   atomic.Int64
	rejected atomic.Int64
}

// NewProxy returns a Proxy that knows no token yet; Allow adds some. It
// listens nowhere until FrontGRPC or FrontHTTP. It is safe for concurrent
// use.
func NewProxy(opts ...ProxyOption) (*Proxy, error) {
	cfg := proxyConfig{status: http.StatusUnauthorized}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	return &Proxy{ca: cfg.ca, status: cfg.status, tokens: make(map[string]bool)}, nil
}

// Allow makes token valid, also one that had expired. It is safe for
// concurrent use.
func (p *Proxy) Allow(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens[token] = true
}

// Expire makes the proxy refuse token from now on, as it refuses a token
// whose lifetime is over. It is safe for concurrent use.
func (p *Proxy) Expire(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.tokens[token]; ok {
		p.tokens[token] = false
	}
}

// Passed returns how many requests the proxy passed on (a gRPC call or
// stream is one request). It is safe for concurrent use.
func (p *Proxy) Passed() int64 { return p.passed.Load() }

// Rejected returns how many requests the proxy refused. It is safe for
// concurrent use.
func (p *Proxy) Rejected() int64 { return p.rejected.Load() }

// ResetCounters zeroes Passed and Rejected. It is safe for concurrent use.
func (p *Proxy) ResetCounters() {
	p.passed.Store(0)
	p.rejected.Store(0)
}

// Handler returns next behind the proxy's check: a request without a
// valid proxy token is refused, a valid one reaches next without its
// Proxy-Authorization header. It is safe for concurrent use.
func (p *Proxy) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := p.check(r.Header.Values("Proxy-Authorization")); reason != "" {
			p.rejected.Add(1)
			w.Header().Set("Proxy-Authenticate", ProxyAuthenticate)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(p.status)
			fmt.Fprintf(w, "testserver proxy: %s\n", reason)
			return
		}
		p.passed.Add(1)
		r.Header.Del("Proxy-Authorization")
		next.ServeHTTP(w, r)
	})
}

// check returns why the Proxy-Authorization values are refused, or "". The
// reason never holds the token.
func (p *Proxy) check(values []string) string {
	switch {
	case len(values) == 0:
		return "missing Proxy-Authorization header"
	case len(values) > 1:
		return fmt.Sprintf("%d Proxy-Authorization headers, want 1", len(values))
	case !hasBearerPrefix(values[0]):
		return "the Proxy-Authorization header is not a Bearer credential"
	}
	token := strings.TrimSpace(values[0][len(bearerPrefix):])
	p.mu.Lock()
	valid, known := p.tokens[token]
	p.mu.Unlock()
	switch {
	case !known:
		return "unknown proxy token"
	case !valid:
		return "expired proxy token"
	}
	return ""
}

// FrontGRPC starts a front for the plaintext gRPC server at backendAddr
// (host:port on loopback, such as the Addr of an AdminServer made
// WithTCP) and returns the address to dial instead. The front speaks h2c,
// or TLS with WithProxyTLS, and passes calls on over h2c. It is safe for
// concurrent use.
func (p *Proxy) FrontGRPC(backendAddr string) (addr string, err error) {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	target := &url.URL{Scheme: "http", Host: backendAddr}
	srv, err := p.front(target, tr, tr)
	if err != nil {
		return "", err
	}
	return srv.Listener.Addr().String(), nil
}

// FrontHTTP starts a front for the HTTP server at backendURL (such as the
// URL of a TokenServer), reached through rt (nil: a plain transport; pass
// the TokenServer's HTTPClient().Transport for one that serves TLS), and
// returns the front's base URL. It is safe for concurrent use.
func (p *Proxy) FrontHTTP(backendURL string, rt http.RoundTripper) (frontURL string, err error) {
	target, err := url.Parse(backendURL)
	if err != nil || target.Host == "" {
		return "", fmt.Errorf("testserver: FrontHTTP: %q is not an absolute URL", backendURL)
	}
	var own *http.Transport
	if rt == nil {
		own = http.DefaultTransport.(*http.Transport).Clone()
		rt = own
	}
	srv, err := p.front(target, rt, own)
	if err != nil {
		return "", err
	}
	return srv.URL, nil
}

// front starts a server that passes what the proxy admits on to target
// through rt. owned, if not nil, is a transport the proxy made and closes.
func (p *Proxy) front(target *url.URL, rt http.RoundTripper, owned *http.Transport) (*httptest.Server, error) {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Del("Proxy-Authorization")
		},
		Transport:      rt,
		FlushInterval:  -1, // gRPC streams: pass every message on at once
		ModifyResponse: trailersOnly,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	srv := httptest.NewUnstartedServer(p.Handler(rp))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if p.ca != nil {
		tlsCfg, err := p.ca.ServerTLSConfig()
		if err != nil {
			return nil, err
		}
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		srv.TLS = tlsCfg
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		srv.Close()
		if owned != nil {
			owned.CloseIdleConnections()
		}
		return nil, errors.New("testserver: the proxy is closed")
	}
	p.fronts = append(p.fronts, srv)
	if owned != nil {
		p.rts = append(p.rts, owned)
	}
	return srv, nil
}

// trailersOnly passes on a gRPC "trailers-only" answer (the status in
// the one header block that ends the stream, how a gRPC server refuses a
// call) as a header and a trailer: net/http would otherwise send the
// status in a header block that does not end the stream, which a gRPC
// client reads as a stream closed without trailers.
func trailersOnly(resp *http.Response) error {
	if resp.Header.Get("Grpc-Status") == "" {
		return nil
	}
	if resp.Trailer == nil {
		resp.Trailer = make(http.Header)
	}
	for _, k := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
		if vs, ok := resp.Header[k]; ok {
			resp.Trailer[k] = vs
			resp.Header.Del(k)
		}
	}
	return nil
}

// Close stops every front, ending requests in flight, and closes the
// connections to the backends. It may be called more than once. It is safe
// for concurrent use.
func (p *Proxy) Close() {
	p.mu.Lock()
	fronts, rts := p.fronts, p.rts
	p.fronts, p.rts, p.closed = nil, nil, true
	p.mu.Unlock()
	for _, srv := range fronts {
		srv.CloseClientConnections()
		srv.Close()
	}
	for _, tr := range rts {
		tr.CloseIdleConnections()
	}
}
