package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/callbackpage"
	"github.com/flyteauth/grpcauth/internal/grpcretry"
	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/retry"
	"github.com/flyteauth/grpcauth/internal/storeview"
	"github.com/flyteauth/grpcauth/internal/telemetry"
	"github.com/flyteauth/grpcauth/loginui"
	"github.com/flyteauth/grpcauth/tokencache"
)

// proxyAuthorizationKey is the metadata key, and HTTP header, that carries
// the token of proxyCommand.
const proxyAuthorizationKey = "proxy-authorization"

// parts is what authenticates a client of the deployment, whatever carries
// its calls: New's gRPC connection, connectauth's HTTP client, a command.
// build makes them, from one Config and one set of options, for every
// entry point.
type parts struct {
	// tel is the telemetry of WithTelemetry, nil without it; unobserve
	// ends its reading of the keeper's Stats.
	tel       *telemetry.T
	unobserve func()
	keeper    *authenticator.Keeper
	proxy     *authenticator.Keeper // nil without proxyCommand
	store     configstore.ClientConfigStore
	// iopts are the interceptor options: the Config's, then the caller's.
	iopts []interceptor.Option
	// dial are the dial options of New's connection, for Client.Dial.
	dial []grpc.DialOption
}

// close ends both keepers. It is safe to call more than once.
func (p *parts) close() {
	if p.unobserve != nil {
		p.unobserve()
	}
	if p.keeper != nil {
		_ = p.keeper.Close()
	}
	if p.proxy != nil {
		_ = p.proxy.Close()
	}
}

// interceptors are the dial options that install the interceptors on a
// gRPC connection: the OAuth2 token's outside, the proxy token's inside,
// so that the OAuth2 ones see the proxy's refusals first.
//
// The credentials ride on per-RPC credentials of the connection rather
// than on a call option per call, so that a call costs no allocation of
// its own; gRPC sends both the token's and the proxy's.
func (p *parts) interceptors() []grpc.DialOption {
	var d []grpc.DialOption
	if p.keeper != nil {
		d = grpcretry.NewTokenAuth(p.keeper, retry.NewOptions(p.iopts)).DialOptions()
	}
	if p.proxy != nil {
		d = append(d, grpcretry.NewProxyAuth(p.proxy, retry.NewOptions(p.iopts)).DialOptions()...)
	}
	return d
}

// httpTransport wraps base so that its requests carry the proxy token,
// when there is a proxyCommand; else it returns base.
func (p *parts) httpTransport(base http.RoundTripper) http.RoundTripper {
	if p.proxy == nil {
		return base
	}
	return interceptor.ProxyTransport(p.proxy, base, p.iopts...)
}

// build makes the parts of a client of the deployment cfg names. meta
// carries the AuthMetadataService RPCs, when the store must ask them. It
// does no network I/O.
func build(cfg Config, o *options, meta grpc.ClientConnInterface) (*parts, error) {
	mode, err := cfg.authMode()
	if err != nil {
		return nil, err
	}
	cfg.AudienceParam = strings.ToLower(strings.TrimSpace(cfg.AudienceParam))
	switch cfg.AudienceParam {
	case "", "audience", "resource", "both":
	default:
		return nil, fmt.Errorf("grpcauth: audienceParam %q: want audience, resource or both", redact.Clip(cfg.AudienceParam, 64))
	}
	cfg.TokenCache = strings.ToLower(strings.TrimSpace(cfg.TokenCache))
	switch cfg.TokenCache {
	case "", "file", "keyring":
	default:
		return nil, fmt.Errorf("grpcauth: tokenCache %q: want file or keyring", redact.Clip(cfg.TokenCache, 64))
	}
	p := new(parts)
	if p.tel, err = telemetry.New(o.meters, o.tracers, strings.TrimSuffix(mode, " (default)")); err != nil {
		return nil, fmt.Errorf("grpcauth: telemetry: %w", err)
	}
	if cfg.Insecure {
		p.iopts = append(p.iopts, interceptor.WithInsecure())
	}
	if o.logger != nil {
		p.iopts = append(p.iopts, interceptor.WithLogger(o.logger))
	}
	if onRetry := p.tel.OnRetry(); onRetry != nil {
		p.iopts = append(p.iopts, interceptor.WithOnRetry(onRetry))
	}
	p.iopts = append(p.iopts, o.iopts...)

	// Every keeper gets the logger and the token timeout first, so that
	// the caller's own options win.
	var common []authenticator.Option
	if o.logger != nil {
		common = append(common, authenticator.WithLogger(o.logger))
	}
	if o.timeout > 0 {
		common = append(common, authenticator.WithTokenTimeout(o.timeout))
	}

	if len(cfg.ProxyCommand) > 0 {
		if p.proxy, err = cfg.proxyKeeper(common); err != nil {
			return nil, err
		}
	}
	if mode == AuthTypePassthrough {
		return p, nil // no token of ours: the caller's headers go as they are
	}
	fail := func(err error) (*parts, error) {
		if p.proxy != nil {
			_ = p.proxy.Close()
		}
		return nil, err
	}
	hc, err := p.tokenHTTPClient(cfg.netconf())
	if err != nil {
		return fail(err)
	}
	if p.store, err = cfg.configStore(mode, o, p.tel.Metadata(meta)); err != nil {
		return fail(err)
	}
	flow, fopts, err := cfg.flow(mode, o)
	if err != nil {
		return fail(err)
	}
	kopts := append(common, authenticator.WithHTTPClient(hc))
	kopts = append(kopts, cfg.keeperOptions()...)
	if o.cache != nil && mode == AuthTypeClientSecret {
		// Asked for: a short-lived process then makes one token request
		// per token lifetime, not one per run. (A command's tokens are
		// not kept: the command is its own cache, and its client id would
		// be the browser login's.)
		kopts = append(kopts, authenticator.WithCache(o.cache))
	}
	kopts = append(kopts, fopts...)
	kopts = append(kopts, o.aopts...)
	keeperStore := storeview.Wrap(p.store, storeview.View{Header: cfg.AuthorizationHeader, AudienceParam: cfg.AudienceParam, Logger: o.logger})
	if p.keeper, err = authenticator.New(cfg.Endpoint, keeperStore, flow, kopts...); err != nil {
		return fail(fmt.Errorf("grpcauth: %w", err))
	}
	if p.unobserve, err = p.tel.Observe(p.keeper); err != nil {
		p.close()
		return nil, fmt.Errorf("grpcauth: telemetry: %w", err)
	}
	return p, nil
}

// tokenHTTPClient is the client of the token requests: the Config's TLS
// settings and HTTP proxy, the proxy token on every request, no redirects
// (a token endpoint that redirects is misconfigured, and following it
// would send the credentials on).
func (p *parts) tokenHTTPClient(n netconf.Settings) (*http.Client, error) {
	tr, err := n.Transport()
	if err != nil {
		return nil, fmt.Errorf("grpcauth: %w", err)
	}
	return &http.Client{Transport: p.httpTransport(p.tel.Transport(tr)), CheckRedirect: netconf.NoRedirects}, nil
}

// netconf are the Config's connection settings.
func (c Config) netconf() netconf.Settings {
	return netconf.Settings{CAFile: c.CACertFilePath, SkipVerify: c.InsecureSkipVerify, ProxyURL: c.HTTPProxyURL}
}

// keeperOptions are the Keeper options the Config gives whatever the
// flow: tokenUrl, scopes, audience, authorizationHeader,
// tokenRefreshWindow and insecure.
func (c Config) keeperOptions() []authenticator.Option {
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
	if c.TokenRefreshWindow > 0 {
		o = append(o, authenticator.WithRefreshMargin(c.TokenRefreshWindow))
	}
	if c.Insecure {
		o = append(o, authenticator.WithInsecure())
	}
	return o
}

// proxyKeeper is the Keeper of proxyCommand: it runs the command for each
// proxy token (again at the token's JWT expiry and when the proxy refuses
// it) and hands out "proxy-authorization: Bearer <token>".
func (c Config) proxyKeeper(common []authenticator.Option) (*authenticator.Keeper, error) {
	flow, err := authenticator.NewCommandFlow(c.ProxyCommand, c.secretEnv()...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: proxyCommand: %w", err)
	}
	store := configstore.NewStatic(configstore.ClientConfig{})
	opts := append([]authenticator.Option{authenticator.WithHeaderKey(proxyAuthorizationKey)}, common...)
	if c.Insecure {
		opts = append(opts, authenticator.WithInsecure())
	}
	k, err := authenticator.New(c.Endpoint, store, flow, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: proxyCommand: %w", err)
	}
	return k, nil
}

// secretEnv names the environment variables that hold a secret of this
// process: the commands of command and proxyCommand do not see them.
func (c Config) secretEnv() []string {
	env := []string{"FLYTE_CREDENTIALS_CLIENT_SECRET"}
	if c.ClientSecretEnvVar != "" {
		env = append(env, c.ClientSecretEnvVar)
	}
	return env
}

// pageReadTimeout bounds the read of pkceConfig.callbackPage.
const pageReadTimeout = 10 * time.Second

// flow returns the flow of mode and the Keeper options it needs.
func (c Config) flow(mode string, o *options) (authenticator.Flow, []authenticator.Option, error) {
	switch mode {
	case AuthTypeClientSecret:
		if strings.TrimSpace(c.ClientID) == "" {
			return nil, nil, errors.New("grpcauth: authType ClientSecret needs a clientId (FLYTE_CREDENTIALS_CLIENT_ID)")
		}
		src, err := c.secretSource()
		if err != nil {
			return nil, nil, err
		}
		f, err := authenticator.ClientCredentials(c.ClientID, src)
		if err != nil {
			return nil, nil, fmt.Errorf("grpcauth: %w", err)
		}
		return f, nil, nil
	case AuthTypeExternalCommand:
		if len(c.Command) == 0 {
			return nil, nil, errors.New("grpcauth: authType ExternalCommand needs a command (admin.command, FLYTE_CREDENTIALS_COMMAND)")
		}
		f, err := authenticator.NewCommandFlow(c.Command, c.secretEnv()...)
		if err != nil {
			return nil, nil, fmt.Errorf("grpcauth: command: %w", err)
		}
		return f, nil, nil
	}
	// The interactive flows: a person is shown the login, and the tokens
	// are kept in a cache shared by the user's processes.
	prompt := o.prompt
	if prompt == nil {
		prompt = &loginui.Terminal{}
	}
	if path := strings.TrimSpace(c.PkceConfig.CallbackPage); path != "" && mode != AuthTypeDeviceFlow {
		ctx, cancel := context.WithTimeout(context.Background(), pageReadTimeout)
		page, err := callbackpage.Load(ctx, path)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("grpcauth: pkceConfig.callbackPage: %w", err)
		}
		prompt = callbackpage.Wrap(prompt, page, c.Endpoint, o.logger)
	}
	var f authenticator.Flow
	var err error
	refresh := c.PkceConfig.RefreshTime
	if mode == AuthTypeDeviceFlow {
		refresh = c.DeviceFlowConfig.RefreshTime
		f, err = authenticator.NewDeviceFlow(authenticator.DeviceConfig{
			ClientID:     c.ClientID,
			Timeout:      c.DeviceFlowConfig.Timeout,
			PollInterval: c.DeviceFlowConfig.PollInterval,
			Prompter:     prompt,
		})
	} else {
		var params url.Values
		if params, err = c.PkceConfig.authParams(); err == nil {
			f, err = authenticator.NewPKCEFlow(authenticator.PKCEConfig{
				ClientID:   c.ClientID,
				Timeout:    c.PkceConfig.Timeout,
				Prompter:   prompt,
				AuthParams: params,
			})
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("grpcauth: authType %s: %w", strings.TrimSuffix(mode, " (default)"), err)
	}
	cache := o.cache
	if cache == nil {
		var copts []tokencache.Option
		if o.logger != nil {
			copts = append(copts, tokencache.WithLogger(o.logger))
		}
		if c.TokenCache == "keyring" {
			copts = append(copts, tokencache.WithKeyring())
		}
		file, err := tokencache.NewFile(copts...)
		if err != nil {
			return nil, nil, fmt.Errorf("grpcauth: token cache: %w", err)
		}
		cache = file
	}
	opts := []authenticator.Option{authenticator.WithCache(cache)}
	if c.TokenRefreshWindow == 0 && refresh > 0 {
		opts = append(opts, authenticator.WithRefreshMargin(refresh))
	}
	if mode == defaultPkce {
		// Chosen by default, not by the user: log in only when a server
		// asks for a token.
		opts = append(opts, authenticator.WithLazyStart())
	}
	return f, opts, nil
}

// configStore returns where the Keeper learns what cfg does not name: the
// store the caller gave, else the deployment's AuthMetadataService over
// meta, asked only for what is missing (flyte#2957), or nothing at all
// when cfg names it all. For client credentials, tokenUrl spares
// GetOAuth2Metadata, and scopes with authorizationHeader (and audience,
// when useAudienceFromAdmin asks for the server's) spare
// GetPublicClientConfig; an external command needs no token endpoint. The
// interactive flows need the server's authorization or device endpoint and
// public client, so they always ask.
func (c Config) configStore(mode string, o *options, meta grpc.ClientConnInterface) (configstore.ClientConfigStore, error) {
	if o.store != nil {
		return o.store, nil
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
	opts := []configstore.Option{configstore.WithService(o.service)}
	if o.logger != nil {
		opts = append(opts, configstore.WithLogger(o.logger))
	}
	if o.timeout > 0 {
		opts = append(opts, configstore.WithTimeout(o.timeout))
	}
	if !needMeta {
		opts = append(opts, configstore.WithoutOAuth2Metadata())
	}
	if !needPublic {
		opts = append(opts, configstore.WithoutPublicClientConfig())
	}
	if strings.TrimSpace(c.TokenURL) != "" {
		opts = append(opts, configstore.AllowMissingTokenEndpoint())
	}
	s, err := configstore.NewRemote(meta, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: %w", err)
	}
	return s, nil
}

// authParams parses pkceConfig.authParams, "name=value" each.
func (p PkceConfig) authParams() (url.Values, error) {
	if len(p.AuthParams) == 0 {
		return nil, nil
	}
	v := url.Values{}
	for _, kv := range p.AuthParams {
		name, value, ok := strings.Cut(kv, "=")
		if name = strings.TrimSpace(name); !ok || name == "" {
			return nil, fmt.Errorf("pkceConfig.authParams: %q is not name=value", redact.Clip(kv, 64))
		}
		v.Add(name, value)
	}
	return v, nil
}
