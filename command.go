package grpcauth

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/certpool"
)

// ProxyAuthorizationKey is the metadata key, and HTTP header, that carries
// the token of proxyCommand.
const ProxyAuthorizationKey = "proxy-authorization"

// commandFlow returns the flow of authType ExternalCommand: Command is run
// for every token (see authenticator.CommandFlow). It fails when Command is
// empty.
func (c Config) commandFlow(opts ...authenticator.CommandOption) (authenticator.Flow, error) {
	if len(c.Command) == 0 {
		return nil, errors.New("grpcauth: authType ExternalCommand needs a command (admin.command, FLYTE_CREDENTIALS_COMMAND)")
	}
	f, err := authenticator.NewCommandFlow(c.Command, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: command (from %s): %w", c.Source("command"), err)
	}
	return f, nil
}

// proxy is what proxyCommand adds to a client: a Keeper of its own for the
// proxy token, the interceptors that send it on every gRPC call, and the
// wrapper that sends it on every HTTP request.
type proxy struct {
	// keeper runs ProxyCommand and keeps its token fresh.
	keeper *authenticator.Keeper
	// dial holds the proxy interceptors. They must be chained after (inside)
	// the OAuth2 interceptors, so that they see the proxy's refusals first.
	dial []grpc.DialOption
	// wrap adds Proxy-Authorization to the requests of an HTTP transport.
	wrap func(http.RoundTripper) http.RoundTripper
}

// ErrNoProxyCommand reports that a proxy token was asked for but the
// Config has no proxyCommand.
var ErrNoProxyCommand = errors.New("no proxyCommand: set admin.proxyCommand or FLYTE_CREDENTIALS_PROXY_COMMAND")

// NewProxyAuthenticator returns the Keeper of proxyCommand: it runs
// ProxyCommand for each proxy token (again at the token's JWT expiry and
// when the proxy refuses it) and hands out "proxy-authorization: Bearer
// <token>". opts come after its own, WithHeaderKey(ProxyAuthorizationKey);
// WithTokenTimeout bounds each run of the command (default 30 s). It fails
// with ErrNoProxyCommand when ProxyCommand is empty. It does no I/O. It is
// safe for concurrent use with other reads of c.
func (c Config) NewProxyAuthenticator(opts ...authenticator.Option) (*authenticator.Keeper, error) {
	if len(c.ProxyCommand) == 0 {
		return nil, fmt.Errorf("grpcauth: %w", ErrNoProxyCommand)
	}
	store := configstore.NewStatic(configstore.ClientConfig{})
	opts = append([]authenticator.Option{authenticator.WithHeaderKey(ProxyAuthorizationKey)}, opts...)
	k, err := authenticator.NewCommandAuthenticator(c.Endpoint, c.ProxyCommand, store, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: proxyCommand (from %s): %w", c.Source("proxyCommand"), err)
	}
	return k, nil
}

// proxySetup returns the proxy of ProxyCommand, or nil when ProxyCommand is
// empty. iopts go to the proxy interceptors and transport (WithInsecure is
// added when Insecure is set); aopts to its Keeper (see
// NewProxyAuthenticator). It does no I/O.
func (c Config) proxySetup(iopts []interceptor.Option, aopts ...authenticator.Option) (*proxy, error) {
	if len(c.ProxyCommand) == 0 {
		return nil, nil
	}
	k, err := c.NewProxyAuthenticator(aopts...)
	if err != nil {
		return nil, err
	}
	if c.Insecure {
		iopts = append([]interceptor.Option{interceptor.WithInsecure()}, iopts...)
	}
	return &proxy{
		keeper: k,
		dial: []grpc.DialOption{
			grpc.WithChainUnaryInterceptor(interceptor.ProxyUnaryClientInterceptor(k, iopts...)),
			grpc.WithChainStreamInterceptor(interceptor.ProxyStreamClientInterceptor(k, iopts...)),
		},
		wrap: func(base http.RoundTripper) http.RoundTripper {
			return interceptor.ProxyTransport(k, base, iopts...)
		},
	}, nil
}

// tokenHTTPOptions returns the authenticator options for the HTTP client
// of the token requests. Without a proxy, these are Flyte's httpProxyURL,
// caCertFilePath and insecureSkipVerify as options. With one, the client
// is built here with those settings and its transport wrapped by p, so
// that every token request carries Proxy-Authorization
// (authenticator.WithHTTPClient, which the Keeper then uses as given).
func (c Config) tokenHTTPOptions(p *proxy) ([]authenticator.Option, error) {
	if p == nil {
		var o []authenticator.Option
		if c.HTTPProxyURL != "" {
			o = append(o, authenticator.WithHTTPProxyURL(c.HTTPProxyURL))
		}
		if c.CACertFilePath != "" {
			o = append(o, authenticator.WithCACertFile(c.CACertFilePath))
		}
		if c.InsecureSkipVerify {
			o = append(o, authenticator.WithInsecureSkipVerify())
		}
		return o, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.HTTPProxyURL != "" {
		u, err := url.Parse(c.HTTPProxyURL)
		// The URL is not echoed: it may hold proxy credentials.
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			return nil, errors.New("grpcauth: httpProxyURL: want scheme://host:port with scheme http, https or socks5")
		}
		tr.Proxy = http.ProxyURL(u)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CACertFilePath != "" {
		pool, err := certpool.WithFile(c.CACertFilePath)
		if err != nil {
			return nil, fmt.Errorf("grpcauth: caCertFilePath: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	hc := &http.Client{
		Transport: p.wrap(tr),
		// As the Keeper's own client: a token endpoint that redirects is
		// misconfigured, and following it would send the credentials on.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return []authenticator.Option{authenticator.WithHTTPClient(hc)}, nil
}
