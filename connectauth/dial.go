package connectauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/connectmeta"
	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// Client is what New builds from a Flyte config: everything a generated
// connect-go client constructor takes, authenticated. Its fields are set
// once by New; the values they point to are safe for concurrent use.
//
//	runs := workflowconnect.NewRunServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
type Client struct {
	// HTTPClient speaks HTTP/2 (and HTTP/1.1) over TLS, or HTTP/2 without
	// TLS (h2c) when the config says insecure: connect-go's gRPC protocol
	// and its bidi streams need HTTP/2. With a proxyCommand, every request
	// carries the proxy token.
	HTTPClient *http.Client
	// BaseURL is "https://host:port", or "http://host:port" when the
	// config says insecure.
	BaseURL string
	// Options installs the Interceptor (connect.WithInterceptors). Add a
	// protocol option (connect.WithGRPC(), connect.WithGRPCWeb()) after it
	// if wanted; connect-go's default is the Connect protocol.
	Options []connect.ClientOption
	// Interceptor is the interceptor of Options.
	Interceptor *Interceptor
	// Authenticator keeps the token.
	Authenticator *authenticator.Keeper
	// (With authType Passthrough, Interceptor and Authenticator are nil
	// and Options empty: each request carries the headers its caller set,
	// connect.Request.Header().Set.)
	// ConfigStore says where the token endpoint is.
	ConfigStore configstore.ClientConfigStore

	parts *grpcauth.Client // the parts, and the connection of Flyte 1's metadata RPCs
}

// Format describes the client for every fmt verb without secrets or
// tokens.
func (c *Client) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "connectauth.Client{BaseURL: %q, Authenticator: %v, ConfigStore: %v}", c.BaseURL, c.Authenticator, c.ConfigStore)
}

// Close ends the keepers (a token request in flight or a background
// refresh stops promptly), closes the connection of Flyte 1's metadata RPCs and
// the idle connections of the HTTP client. It is safe for concurrent use.
func (c *Client) Close() error {
	c.HTTPClient.CloseIdleConnections()
	return c.parts.Close()
}

// New builds an authenticated connect-go client setup for the Flyte
// deployment that cfg describes, with the parts grpcauth.New builds (the
// same keys, flows, proxy and options mean the same), over an HTTP client
// instead of a gRPC connection. The config store asks the deployment's
// AuthMetadataService only for what cfg does not name: Flyte 2's over the
// Connect protocol through the HTTP client, as flyte-sdk does (HTTP/1.1
// will do), else Flyte 1's over a grpc-go connection to the same endpoint;
// give grpcauth.WithConfigStore to ask elsewhere, such as a
// configstore.Discovery. It does no network I/O. Close releases what New
// opened.
func New(cfg grpcauth.Config, opts ...grpcauth.Option) (*Client, error) {
	target, err := cfg.Target()
	if err != nil {
		return nil, err
	}
	// Flyte 2's AuthMetadataService is asked over the Connect protocol,
	// through the client's own HTTP client, set below.
	meta := new(connectmeta.Conn)
	via := connectmeta.Via(func(next grpc.ClientConnInterface) grpc.ClientConnInterface {
		meta.Next = next
		return meta
	}).(grpcauth.Option)
	parts, err := grpcauth.New(cfg, append([]grpcauth.Option{via}, opts...)...)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(cfg, parts)
	if err != nil {
		_ = parts.Close()
		return nil, err
	}
	scheme := "https://"
	if cfg.Insecure {
		scheme = "http://"
	}
	c := &Client{HTTPClient: hc, BaseURL: scheme + strings.TrimPrefix(target, "dns:///"), Authenticator: parts.Authenticator, ConfigStore: parts.ConfigStore, parts: parts}
	meta.Set(hc, c.BaseURL)
	if parts.Authenticator == nil {
		return c, nil // Passthrough: the caller's own headers go as they are
	}
	if c.Interceptor, err = NewInterceptor(parts.Authenticator, c.BaseURL, parts.InterceptorOptions...); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.Options = []connect.ClientOption{connect.WithInterceptors(c.Interceptor)}
	return c, nil
}

// OptionsFor returns the Options of a generated client of another base
// URL of the same deployment, such as a Flyte 2 data plane (its public
// client config's dataplane_domain): an interceptor for baseURL that
// shares c's keeper, so both carry the same token, and a rejection on
// either refreshes it once for both. Use it with c.HTTPClient. Its base URL
// is checked as NewInterceptor checks one: plain HTTP to a host that is
// not loopback gets no token unless the config says insecure. With
// Passthrough it returns none.
//
//	dp, err := c.OptionsFor("https://dataplane.example")
//	...
//	data := dataproxyconnect.NewDataProxyServiceClient(c.HTTPClient, "https://dataplane.example", dp...)
func (c *Client) OptionsFor(baseURL string) ([]connect.ClientOption, error) {
	if c.Authenticator == nil {
		return nil, nil
	}
	i, err := NewInterceptor(c.Authenticator, baseURL, c.parts.InterceptorOptions...)
	if err != nil {
		return nil, err
	}
	return []connect.ClientOption{connect.WithInterceptors(i)}, nil
}

// httpClient returns an HTTP/2 client with cfg's TLS settings, or an h2c
// client when cfg says insecure, that carries the proxy token when there
// is one.
func httpClient(cfg grpcauth.Config, parts *grpcauth.Client) (*http.Client, error) {
	tr, err := netconf.Settings{CAFile: cfg.CACertFilePath, SkipVerify: cfg.InsecureSkipVerify, ProxyURL: cfg.HTTPProxyURL}.Transport()
	if err != nil {
		return nil, fmt.Errorf("connectauth: %w", err)
	}
	p := new(http.Protocols)
	if cfg.Insecure {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	}
	tr.Protocols = p
	var rt http.RoundTripper = tr
	if parts.Proxy != nil {
		rt = interceptor.ProxyTransport(parts.Proxy, tr, parts.InterceptorOptions...)
	}
	return &http.Client{Transport: rt, CheckRedirect: sameOrigin}, nil
}

// sameOrigin refuses a redirect to another scheme or host: the token the
// interceptor set is a request header, which net/http carries to a
// redirect on the same host name even from https to http.
func sameOrigin(r *http.Request, via []*http.Request) error {
	first := via[0].URL
	if !strings.EqualFold(r.URL.Scheme, first.Scheme) || !strings.EqualFold(r.URL.Host, first.Host) {
		return fmt.Errorf("connectauth: refusing a redirect from %s://%s to %s://%s: the call carries a token", first.Scheme, first.Host, r.URL.Scheme, redact.Clip(r.URL.Host, 200))
	}
	if len(via) >= 10 {
		return errors.New("connectauth: stopped after 10 redirects")
	}
	return nil
}
