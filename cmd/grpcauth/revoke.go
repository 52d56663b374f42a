package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// revokeLogin revokes tok at the identity provider (RFC 7009): the refresh
// token first (a server revokes the whole login with it), then the access
// token. The revocation endpoint comes from the deployment's metadata,
// else from its issuer's discovery document. It returns what happened, in
// one sentence: revoked, or why not.
func revokeLogin(ctx context.Context, c *grpcauth.Client, cfg grpcauth.Config, clientID string, tok *oauth2.Token) string {
	const unrevoked = " The token stays valid at the server until it expires."
	if c.ConfigStore == nil {
		return "Not revoked: authType Passthrough keeps no login." + unrevoked
	}
	hc, err := revocationClient(c, cfg)
	if err != nil {
		return "Not revoked: " + redact.Clip(err.Error(), 300) + "." + unrevoked
	}
	defer hc.CloseIdleConnections()
	cc, err := c.ConfigStore.GetClientConfig(ctx)
	if err != nil {
		return "Not revoked: the deployment's identity provider is unknown (" + redact.Clip(err.Error(), 300) + ")." + unrevoked
	}
	endpoint, where := cc.RevocationEndpoint, "the deployment's metadata"
	if endpoint == "" && cc.Issuer != "" {
		where = "the discovery document of " + redact.URL(cc.Issuer)
		opts := []configstore.Option{configstore.WithHTTPClient(hc)}
		if cfg.Insecure {
			opts = append(opts, configstore.WithInsecure())
		}
		d, err := configstore.NewDiscovery(cc.Issuer, opts...)
		if err != nil {
			return "Not revoked: " + redact.Clip(err.Error(), 300) + "." + unrevoked
		}
		dc, err := d.GetClientConfig(ctx)
		if err != nil {
			return "Not revoked: the identity provider's metadata could not be read (" + redact.Clip(err.Error(), 300) + ")." + unrevoked
		}
		endpoint = dc.RevocationEndpoint
	}
	if endpoint == "" {
		return "Not revoked: " + where + " names no revocation endpoint." + unrevoked
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && (cfg.Insecure || transportsec.LoopbackHost(u.Hostname())))) {
		return fmt.Sprintf("Not revoked: the revocation endpoint %s is not https.%s", redact.URL(endpoint), unrevoked)
	}
	// The refresh token goes only to the server that issued it (RFC 6749
	// §10.4): the host of the token endpoint in use.
	tokenURL := cmp.Or(strings.TrimSpace(cfg.TokenURL), cc.TokenEndpoint)
	if tu, err := url.Parse(tokenURL); err != nil || !strings.EqualFold(tu.Hostname(), u.Hostname()) {
		return fmt.Sprintf("Not revoked: the revocation endpoint %s is not on the host of the token endpoint %s, which issued the token.%s",
			redact.URL(endpoint), redact.URL(tokenURL), unrevoked)
	}
	var done []string
	for _, t := range []struct{ value, hint, name string }{
		{tok.RefreshToken, "refresh_token", "the refresh token"},
		{tok.AccessToken, "access_token", "the access token"},
	} {
		if t.value == "" {
			continue
		}
		if err := revoke(ctx, hc, endpoint, clientID, t.value, t.hint); err != nil {
			msg := fmt.Sprintf("Revocation of %s at %s failed: %s.", t.name, redact.URL(endpoint), redact.Clip(err.Error(), 300))
			if len(done) > 0 {
				msg = "Revoked " + strings.Join(done, " and ") + "; " + strings.ToLower(msg[:1]) + msg[1:]
			}
			return msg
		}
		done = append(done, t.name)
	}
	return fmt.Sprintf("Revoked %s at %s.", strings.Join(done, " and "), redact.URL(endpoint))
}

// revoke sends one revocation request of a public client (RFC 7009 §2.1).
func revoke(ctx context.Context, hc *http.Client, endpoint, clientID, token, hint string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}, "client_id": {clientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// revocationClient reaches the identity provider as the token requests
// do: cfg's TLS and HTTP proxy, the proxy token of proxyCommand, and no
// redirects.
func revocationClient(c *grpcauth.Client, cfg grpcauth.Config) (*http.Client, error) {
	tr, err := netconf.Settings{CAFile: cfg.CACertFilePath, SkipVerify: cfg.InsecureSkipVerify, ProxyURL: cfg.HTTPProxyURL}.Transport()
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = tr
	if c.Proxy != nil {
		rt = interceptor.ProxyTransport(c.Proxy, tr, c.InterceptorOptions...)
	}
	return &http.Client{Transport: rt, CheckRedirect: netconf.NoRedirects}, nil
}
