package grpcauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/certpool"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// The authentication flows of Flyte's authType, in their canonical
// spelling. Only AuthTypeClientSecret is supported so far. Being constants,
// they are safe for concurrent use.
const (
	// AuthTypeClientSecret is the OAuth2 client-credentials grant.
	AuthTypeClientSecret = "ClientSecret"
	// AuthTypePkce is the authorization-code flow with PKCE.
	AuthTypePkce = "Pkce"
	// AuthTypeDeviceFlow is the device authorization grant (RFC 8628).
	AuthTypeDeviceFlow = "DeviceFlow"
	// AuthTypeExternalCommand takes the token from Config.Command.
	AuthTypeExternalCommand = "ExternalCommand"
)

// Sentinel errors, matched with errors.Is. They are never changed, so they
// are safe for concurrent use.
var (
	// ErrNoClientSecret reports a ClientSecret config without any client
	// secret: no ClientSecret, clientSecretEnvVar or clientSecretLocation.
	ErrNoClientSecret = errors.New("no client secret: set Config.ClientSecret (FLYTE_CREDENTIALS_CLIENT_SECRET), clientSecretEnvVar or clientSecretLocation")
)

// authAliases maps lower-cased authType values, Flyte's and flytekit's
// FLYTE_CREDENTIALS_AUTH_MODE spellings, to the canonical name.
var authAliases = map[string]string{
	"clientsecret":       AuthTypeClientSecret,
	"client_credentials": AuthTypeClientSecret,
	"basic":              AuthTypeClientSecret,
	"pkce":               AuthTypePkce,
	"standard":           AuthTypePkce,
	"deviceflow":         AuthTypeDeviceFlow,
	"externalcommand":    AuthTypeExternalCommand,
	"external_process":   AuthTypeExternalCommand,
}

// defaultPkce is the flow of a Config without authType and clientId (what
// flytectl config init writes): flytekit's, the browser login with the
// public client id FlyteAdmin advertises, started only when a server asks
// for a token, so that an open server costs nothing.
const defaultPkce = "Pkce (default)"

// authMode returns the canonical auth type (defaultPkce without authType
// and clientId), or an error for an unknown or unsupported one.
func (c Config) authMode() (string, error) {
	flow, err := c.Flow()
	switch {
	case err != nil:
		return "", err
	case flow == "":
		return defaultPkce, nil
	}
	return flow, nil
}

// Target returns the gRPC target of Endpoint for grpc.NewClient: "host:port"
// and "dns:///host:port" are both accepted, and returned as given. It fails
// on an empty endpoint or a URL such as "https://host". It is safe for
// concurrent use with other reads of c.
func (c Config) Target() (string, error) {
	e := strings.TrimSpace(c.Endpoint)
	if e == "" {
		return "", errors.New("grpcauth: endpoint is empty: set admin.endpoint or FLYTE_PLATFORM_URL")
	}
	lower := strings.ToLower(e)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		return "", fmt.Errorf("grpcauth: endpoint %q is a URL: want host:port or dns:///host:port", redact.URL(e))
	}
	if rest, ok := strings.CutPrefix(e, "dns:///"); ok && rest == "" {
		return "", fmt.Errorf("grpcauth: endpoint %q has no host", redact.URL(e))
	}
	return e, nil
}

// TransportCredentials returns the connection's security: plaintext when
// Insecure is set, else TLS with the system's roots, plus the certificates
// in CACertFilePath, without verification when InsecureSkipVerify is set.
// It reads CACertFilePath; it does no network I/O. It is safe for
// concurrent use with other reads of c.
func (c Config) TransportCredentials() (credentials.TransportCredentials, error) {
	if c.Insecure {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACertFilePath != "" {
		pool, err := certpool.WithFile(c.CACertFilePath)
		if err != nil {
			return nil, fmt.Errorf("grpcauth: caCertFilePath: %w", err)
		}
		cfg.RootCAs = pool
	}
	cfg.InsecureSkipVerify = c.InsecureSkipVerify
	return credentials.NewTLS(cfg), nil
}

// ClientSecretSource says where the client secret will be read from, such
// as "environment variable MY_SECRET (clientSecretEnvVar, from
// /home/me/.flyte/config.yaml)", without the secret; "none" if nowhere. It
// is safe for concurrent use with other reads of c.
func (c Config) ClientSecretSource() string {
	switch {
	case c.ClientSecret != "":
		return fmt.Sprintf("Config.ClientSecret (from %s)", c.Source(ClientSecretKey))
	case c.ClientSecretEnvVar != "":
		return fmt.Sprintf("environment variable %s (clientSecretEnvVar, from %s)", c.ClientSecretEnvVar, c.Source("clientSecretEnvVar"))
	case c.ClientSecretLocation != "":
		return fmt.Sprintf("file %s (clientSecretLocation, from %s)", c.ClientSecretLocation, c.Source("clientSecretLocation"))
	}
	return "none"
}

// secretOption resolves the secret as Flyte does: ClientSecret, else
// clientSecretEnvVar, else clientSecretLocation. The latter two become
// secret sources read at every token request, so rotation is picked up;
// they are read once here too, so that a missing or empty secret is
// reported now. Errors name the source, never the value.
func (c Config) secretOption() (secret string, opt authenticator.Option, err error) {
	if c.ClientSecret != "" {
		s := strings.TrimSpace(c.ClientSecret)
		if s == "" {
			return "", nil, fmt.Errorf("grpcauth: client secret from %s: %w", c.Source(ClientSecretKey), authenticator.ErrEmptySecret)
		}
		return s, nil, nil
	}
	var src authenticator.SecretSource
	var what string
	switch {
	case c.ClientSecretEnvVar != "":
		src, what = authenticator.SecretFromEnv(c.ClientSecretEnvVar), "clientSecretEnvVar"
	case c.ClientSecretLocation != "":
		src, what = authenticator.SecretFromFile(c.ClientSecretLocation), "clientSecretLocation"
	default:
		return "", nil, fmt.Errorf("grpcauth: %w", ErrNoClientSecret)
	}
	if _, err := src.ClientSecret(context.Background()); err != nil {
		return "", nil, fmt.Errorf("grpcauth: %s (from %s): %w", what, c.Source(what), err)
	}
	return "", authenticator.WithSecretSource(src), nil
}

// NewAuthenticator returns the Keeper of the flow c selects (authType:
// ClientSecret, Pkce, DeviceFlow or ExternalCommand; none means the default
// browser login, started lazily), resolving the rest of its configuration
// through store. Pkce and DeviceFlow keep their tokens in the file cache of
// package tokencache. Options from c come first (tokenUrl, scopes,
// audience, authorizationHeader, httpProxyURL, caCertFilePath,
// insecureSkipVerify, tokenRefreshWindow), then opts, which win. It
// reports an unknown authType, a missing client id, secret or command. It
// reads the secret source once to check it; it does no network I/O. It is safe for concurrent use with other reads of c.
func (c Config) NewAuthenticator(store configstore.ClientConfigStore, opts ...authenticator.Option) (*authenticator.Keeper, error) {
	p, err := c.proxySetup(nil)
	if err != nil {
		return nil, err
	}
	return c.newAuthenticator(store, p, opts...)
}

// newAuthenticator is NewAuthenticator with the proxy of proxyCommand (nil
// for none), whose token then goes on every token request.
func (c Config) newAuthenticator(store configstore.ClientConfigStore, p *proxy, opts ...authenticator.Option) (*authenticator.Keeper, error) {
	mode, err := c.authMode()
	if err != nil {
		return nil, err
	}
	o, err := c.keeperOptions(p)
	if err != nil {
		return nil, err
	}
	var flow authenticator.Flow
	switch mode {
	case AuthTypeExternalCommand:
		flow, err = c.commandFlow()
	case AuthTypePkce, defaultPkce:
		if flow, err = c.pkceFlow(); err == nil {
			var io []authenticator.Option
			io, err = c.interactiveOptions(c.PkceConfig.RefreshTime)
			o = append(o, io...)
		}
		if mode == defaultPkce {
			// Chosen by default, not by the user: log in only when a
			// server asks for a token.
			o = append(o, authenticator.WithLazyStart())
		}
	case AuthTypeDeviceFlow:
		if flow, err = c.deviceFlow(); err == nil {
			var io []authenticator.Option
			io, err = c.interactiveOptions(c.DeviceFlowConfig.RefreshTime)
			o = append(o, io...)
		}
	}
	if err != nil {
		return nil, err
	}
	if flow != nil {
		a, err := authenticator.New(c.Endpoint, store, flow, append(o, opts...)...)
		if err != nil {
			return nil, fmt.Errorf("grpcauth: %w", err)
		}
		return a, nil
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return nil, errors.New("grpcauth: authType ClientSecret needs a clientId (FLYTE_CREDENTIALS_CLIENT_ID)")
	}
	secret, secretOpt, err := c.secretOption()
	if err != nil {
		return nil, err
	}
	if secretOpt != nil {
		o = append(o, secretOpt)
	}
	a, err := authenticator.NewClientCredentialsAuthenticator(c.Endpoint, strings.TrimSpace(c.ClientID), secret, store, append(o, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: %w", err)
	}
	return a, nil
}

// AuthenticatorOptions returns the Keeper options c gives whatever the
// flow: tokenUrl, scopes, audience, authorizationHeader, the HTTP client of
// the token requests (httpProxyURL, caCertFilePath, insecureSkipVerify, and
// proxyCommand's token), tokenRefreshWindow and insecure. It is for callers
// that build a Keeper around a flow of their own. It reads
// caCertFilePath; it does no network I/O. It is safe for concurrent use
// with other reads of c.
func (c Config) AuthenticatorOptions() ([]authenticator.Option, error) {
	p, err := c.proxySetup(nil)
	if err != nil {
		return nil, err
	}
	return c.keeperOptions(p)
}

// keeperOptions are AuthenticatorOptions with the proxy set up already.
func (c Config) keeperOptions(p *proxy) ([]authenticator.Option, error) {
	var o []authenticator.Option
	if c.TokenURL != "" {
		o = append(o, authenticator.WithTokenURL(c.TokenURL))
	}
	if len(c.Scopes) > 0 {
		o = append(o, authenticator.WithScopes(c.Scopes...))
	}
	if c.Audience != "" {
		o = append(o, authenticator.WithAudience(c.Audience))
	}
	if c.AuthorizationHeader != "" {
		o = append(o, authenticator.WithHeaderKey(c.AuthorizationHeader))
	}
	hopts, err := c.tokenHTTPOptions(p)
	if err != nil {
		return nil, err
	}
	o = append(o, hopts...)
	if c.TokenRefreshWindow > 0 {
		o = append(o, authenticator.WithRefreshMargin(c.TokenRefreshWindow))
	}
	if c.Insecure {
		o = append(o, authenticator.WithAllowHTTP())
	}
	return o, nil
}

// Client is an authenticated connection to FlyteAdmin together with the
// parts New built for it, for callers that want the authenticator's Stats
// or the advertised configuration. Its fields are set once by New; the
// values they point to are safe for concurrent use.
type Client struct {
	// Conn is the connection, with both auth interceptors installed.
	Conn *grpc.ClientConn
	// Authenticator gets the tokens; nil when the Config asks for no
	// authentication.
	Authenticator *authenticator.Keeper
	// Proxy gets the proxy tokens of proxyCommand; nil without one.
	Proxy *authenticator.Keeper
	// ConfigStore tells the authenticator where the token endpoint is:
	// FlyteAdmin's AuthMetadataService over Conn, or a static store when
	// the Config names everything; nil when the Config asks for no
	// authentication.
	ConfigStore configstore.ClientConfigStore
}

// Close closes the connection and ends the authenticator: a token request
// in flight or a background refresh stops promptly. It is safe for
// concurrent use.
func (c *Client) Close() error {
	if c.Authenticator != nil {
		c.Authenticator.Close()
	}
	if c.Proxy != nil {
		c.Proxy.Close()
	}
	return c.Conn.Close()
}

// NewClient returns a connection to the FlyteAdmin that cfg describes,
// with OAuth2 client credentials attached to every call. It is New without
// the parts; see New. It is safe for concurrent use.
func NewClient(cfg Config, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	c, err := New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	return c.Conn, nil
}

// New builds a connection to the FlyteAdmin that cfg describes, like
// NewClient, and returns it with its authenticator and config store. It does
// no network I/O: grpc.NewClient connects on the first call, and the token
// endpoint is asked for at the first token request, through
// AuthMetadataService on the same connection (whose two RPCs the
// interceptors leave alone).
//
// The connection's security comes from TransportCredentials. Both
// interceptors are installed with cfg's authenticator (see
// NewAuthenticator; with Insecure, interceptor.WithInsecure too), and the
// proxy interceptors with proxyCommand. A Config without authType and
// clientId gets flytekit's default, the browser login (Pkce) with the
// public client id FlyteAdmin advertises, started only when a server
// rejects a call, so that an open server costs no token request. tokenUrl, scopes,
// audience and authorizationHeader win over what FlyteAdmin advertises,
// which fills in what cfg leaves empty (whatever useAudienceFromAdmin
// says); when cfg names the token URL, the scopes and the header key, no
// AuthMetadataService RPC is made at all. With a flow chosen, the first
// call on the connection already carries a token.
//
// opts are appended after New's own options, so they win; use
// WithInterceptorOptions and WithAuthenticatorOptions to pass options to
// the interceptors and the authenticator. It is safe for concurrent use.
func New(cfg Config, opts ...grpc.DialOption) (*Client, error) {
	target, err := cfg.Target()
	if err != nil {
		return nil, err
	}
	if _, err := cfg.authMode(); err != nil {
		return nil, err
	}
	creds, err := cfg.TransportCredentials()
	if err != nil {
		return nil, err
	}
	defaults, err := cfg.DialOptions()
	if err != nil {
		return nil, err
	}
	var (
		iopts []interceptor.Option
		aopts []authenticator.Option
		rest  []grpc.DialOption
	)
	for _, o := range opts {
		switch o := o.(type) {
		case interceptorOptions:
			iopts = append(iopts, o.opts...)
		case authenticatorOptions:
			aopts = append(aopts, o.opts...)
		default:
			rest = append(rest, o)
		}
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, defaults...)
	p, err := cfg.proxySetup(iopts)
	if err != nil {
		return nil, err
	}
	var proxyKeeper *authenticator.Keeper
	if p != nil {
		proxyKeeper = p.keeper
	}
	// The store needs the connection, the connection needs the
	// interceptors, and they need the authenticator, which needs the
	// store: the store gets a forwarder, pointed at the connection once it
	// exists. No call can reach the forwarder before that: the store is
	// asked only at the first token request, from a call on the connection.
	late := new(configstore.LateConn)
	store, err := cfg.configStore(late)
	if err != nil {
		return nil, err
	}
	auth, err := cfg.newAuthenticator(store, p, aopts...)
	if err != nil {
		closeKeeper(proxyKeeper)
		return nil, err
	}
	if cfg.Insecure {
		iopts = append([]interceptor.Option{interceptor.WithInsecure()}, iopts...)
	}
	dial = append(dial,
		grpc.WithChainUnaryInterceptor(interceptor.UnaryClientInterceptor(auth, iopts...)),
		grpc.WithChainStreamInterceptor(interceptor.StreamClientInterceptor(auth, iopts...)),
	)
	if p != nil {
		// Inside the OAuth2 interceptors: they see the proxy's refusals first.
		dial = append(dial, p.dial...)
	}
	cc, err := grpc.NewClient(target, append(dial, rest...)...)
	if err != nil {
		auth.Close()
		closeKeeper(proxyKeeper)
		return nil, fmt.Errorf("grpcauth: dialing %s: %w", redact.URL(target), err)
	}
	late.Set(cc)
	return &Client{Conn: cc, Authenticator: auth, Proxy: proxyKeeper, ConfigStore: store}, nil
}

// interceptorOptions carries interceptor options through New's dial
// options.
type interceptorOptions struct {
	grpc.EmptyDialOption
	opts []interceptor.Option
}

// WithInterceptorOptions passes opts to both interceptors that New and
// NewClient install, after their own (so WithOnRetry or WithLogger can be
// added). It does nothing to a plain grpc.NewClient. It is safe for
// concurrent use.
func WithInterceptorOptions(opts ...interceptor.Option) grpc.DialOption {
	return interceptorOptions{opts: opts}
}

// authenticatorOptions carries authenticator options through New's dial
// options.
type authenticatorOptions struct {
	grpc.EmptyDialOption
	opts []authenticator.Option
}

// WithAuthenticatorOptions passes opts to the authenticator that New and
// NewClient build, after the ones from the Config, so they win (for
// example authenticator.WithLogger or WithRefreshMargin). It does nothing
// to a plain grpc.NewClient. It is safe for concurrent use.
func WithAuthenticatorOptions(opts ...authenticator.Option) grpc.DialOption {
	return authenticatorOptions{opts: opts}
}

// configStore returns where the authenticator learns what cfg does not
// name: FlyteAdmin's AuthMetadataService over cc, asked only for what is
// missing (flyte#2957), or nothing at all when cfg names it all. For
// client credentials, tokenUrl spares GetOAuth2Metadata, and scopes with
// authorizationHeader (and audience, when useAudienceFromAdmin asks for
// the server's) spare GetPublicClientConfig; an external command needs no
// token endpoint. The interactive flows need the server's authorization or
// device endpoint and public client, so they always ask.
func (c Config) configStore(cc grpc.ClientConnInterface) (configstore.ClientConfigStore, error) {
	mode, err := c.authMode()
	if err != nil {
		return nil, err
	}
	var needMeta, needPublic bool
	switch mode {
	case AuthTypeClientSecret:
		needMeta = c.TokenURL == ""
		needPublic = len(c.Scopes) == 0 || c.AuthorizationHeader == "" || (c.UseAudienceFromAdmin && c.Audience == "")
	case AuthTypeExternalCommand:
		needPublic = c.AuthorizationHeader == ""
	default:
		needMeta, needPublic = true, true
	}
	if !needMeta && !needPublic {
		return configstore.NewStatic(configstore.ClientConfig{
			TokenEndpoint: c.TokenURL,
			Scopes:        c.Scopes,
			HeaderKey:     c.AuthorizationHeader,
			Audience:      c.Audience,
		}), nil
	}
	var opts []configstore.RemoteOption
	if !needMeta {
		opts = append(opts, configstore.WithoutOAuth2Metadata())
	}
	if !needPublic {
		opts = append(opts, configstore.WithoutPublicClientConfig())
	}
	r, err := configstore.NewRemote(cc, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: %w", err)
	}
	return r, nil
}

func closeKeeper(k *authenticator.Keeper) {
	if k != nil {
		_ = k.Close()
	}
}
