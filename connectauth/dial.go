package connectauth

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/certpool"
)

// Client is what New builds from a Flyte config: everything a generated
// connect-go client constructor takes, authenticated. Its fields are set
// once by New; the values they point to are safe for concurrent use.
//
//	runs := workflowconnect.NewRunServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
type Client struct {
	// HTTPClient speaks HTTP/2 (and HTTP/1.1) over TLS, or HTTP/2 without
	// TLS (h2c) when the config says insecure: connect-go's gRPC protocol
	// and its bidi streams need HTTP/2.
	HTTPClient *http.Client
	// BaseURL is "https://host:port", or "http://host:port" when the
	// config says insecure.
	BaseURL string
	// Options installs the Interceptor (connect.WithInterceptors). Add a
	// protocol option
	// (connect.WithGRPC(), connect.WithGRPCWeb()) after it if wanted;
	// connect-go's default is the Connect protocol.
	Options []connect.ClientOption
	// Interceptor is the interceptor of Options.
	Interceptor *Interceptor
	// Authenticator gets the tokens.
	Authenticator *authenticator.Keeper
	// ConfigStore says where the token endpoint is.
	ConfigStore configstore.ClientConfigStore

	metaConn *grpc.ClientConn // the config store's connection, if New made one
}

// String describes the client without secrets or tokens.
func (c *Client) String() string {
	return fmt.Sprintf("connectauth.Client{BaseURL: %q, Authenticator: %v, ConfigStore: %v}", c.BaseURL, c.Authenticator, c.ConfigStore)
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// Close ends the authenticator (a token request in flight or a background
// refresh stops promptly), closes the config store's connection and the
// idle connections of the HTTP client. It is safe for concurrent use.
func (c *Client) Close() error {
	c.HTTPClient.CloseIdleConnections()
	if c.Authenticator != nil {
		_ = c.Authenticator.Close()
	}
	if c.metaConn != nil {
		return c.metaConn.Close()
	}
	return nil
}

// DialOption configures New.
type DialOption func(*dialOptions)

type dialOptions struct {
	iopts   []interceptor.Option
	aopts   []authenticator.Option
	service configstore.Service
	store   configstore.ClientConfigStore
}

// WithInterceptorOptions passes opts to the interceptor, after New's own
// (so WithLogger or WithOnRetry can be added).
func WithInterceptorOptions(opts ...interceptor.Option) DialOption {
	return func(o *dialOptions) { o.iopts = append(o.iopts, opts...) }
}

// WithAuthenticatorOptions passes opts to the authenticator, after the ones
// from the config, so they win.
func WithAuthenticatorOptions(opts ...authenticator.Option) DialOption {
	return func(o *dialOptions) { o.aopts = append(o.aopts, opts...) }
}

// WithService chooses which AuthMetadataService the config store asks:
// configstore.ServiceFlyte2, ServiceFlyte1, or ServiceAuto (the default:
// Flyte 2's, falling back to Flyte 1's; see configstore.AutoRemote).
func WithService(s configstore.Service) DialOption {
	return func(o *dialOptions) { o.service = s }
}

// WithConfigStore replaces the AuthMetadataService store, for example by a
// configstore.Discovery reading the RFC 8414 document of the deployment or
// of its identity provider. New then opens no gRPC connection.
func WithConfigStore(s configstore.ClientConfigStore) DialOption {
	return func(o *dialOptions) { o.store = s }
}

// New builds an authenticated connect-go client setup for the Flyte 2
// deployment that cfg describes: endpoint, insecure, insecureSkipVerify,
// caCertFilePath and the authentication keys, read as grpcauth.New reads
// them (see grpcauth.Config.NewAuthenticator for precedence). It does no
// network I/O: the token endpoint is asked for at the first token request.
//
// Without a WithConfigStore option, the config store asks the deployment's
// AuthMetadataService over a grpc-go connection to the same endpoint
// (connect-go handlers answer the gRPC protocol); its RPCs carry no token.
// When cfg sets tokenUrl, a Flyte 2 server without an identity provider is
// no error (configstore.AllowMissingTokenEndpoint). The flow is the one
// grpcauth.Config.NewAuthenticator picks from authType; a cfg without
// authType and clientId gets flytekit's default, the browser login, started
// only when a server rejects a call, so an open server costs nothing. Close
// releases what New opened.
func New(cfg grpcauth.Config, opts ...DialOption) (*Client, error) {
	var o dialOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	target, err := cfg.Target()
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	scheme := "https://"
	if cfg.Insecure {
		scheme = "http://"
	}
	c := &Client{HTTPClient: hc, BaseURL: scheme + strings.TrimPrefix(target, "dns:///")}

	// A store that is never asked costs nothing: the authenticator checks
	// the config first, and only then is the store needed.
	store := o.store
	if store == nil {
		creds, err := cfg.TransportCredentials()
		if err != nil {
			return nil, err
		}
		var ropts []configstore.RemoteOption
		if strings.TrimSpace(cfg.TokenURL) != "" {
			ropts = append(ropts, configstore.AllowMissingTokenEndpoint())
		}
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("connectauth: %w", err)
		}
		if store, err = configstore.NewServiceRemote(conn, o.service, ropts...); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("connectauth: %w", err)
		}
		c.metaConn = conn
	}
	auth, err := cfg.NewAuthenticator(store, o.aopts...)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	iopts := o.iopts
	if cfg.Insecure {
		iopts = append([]interceptor.Option{interceptor.WithInsecure()}, iopts...)
	}
	ic, err := NewInterceptor(auth, c.BaseURL, iopts...)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	c.Authenticator, c.ConfigStore, c.Interceptor = auth, store, ic
	c.Options = []connect.ClientOption{connect.WithInterceptors(ic)}
	return c, nil
}

// httpClient returns an HTTP/2 client with cfg's TLS settings, or an h2c
// client when cfg says insecure.
func httpClient(cfg grpcauth.Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	p := new(http.Protocols)
	if cfg.Insecure {
		p.SetUnencryptedHTTP2(true)
	} else {
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
		if cfg.CACertFilePath != "" {
			pool, err := certpool.WithFile(cfg.CACertFilePath)
			if err != nil {
				return nil, fmt.Errorf("connectauth: caCertFilePath: %w", err)
			}
			tlsCfg.RootCAs = pool
		}
		tr.TLSClientConfig = tlsCfg
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	}
	tr.Protocols = p
	return &http.Client{Transport: tr}, nil
}
