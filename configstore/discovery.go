package configstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Well-known paths of authorization server metadata.
const (
	// oauthMetadataPath is RFC 8414's path (§3), which Flyte 2 serves.
	oauthMetadataPath = "/.well-known/oauth-authorization-server"
	// openIDConfigurationPath is OpenID Connect Discovery's path, the
	// only one some servers (ORY Hydra among them) serve.
	openIDConfigurationPath = "/.well-known/openid-configuration"
)

// maxDocumentSize caps a metadata document.
const maxDocumentSize = 1 << 20

// discovery is the store of an RFC 8414 metadata document.
type discovery struct {
	urls      []string // documents to try, in order; the next on 404
	issuer    string   // the issuer the document must name, without a trailing slash
	anyIssuer bool     // WithRepublishedMetadata
	client    *http.Client
	allowHTTP bool
	cache     fetchCache
}

// NewDiscovery returns a store that reads the metadata of the server at
// baseURL. baseURL is the server's URL or issuer ("https://flyte.example",
// "https://idp.example/tenant"), or the URL of a metadata document itself
// (any URL whose path holds "/.well-known/"), which is then the only one
// read. For an issuer with a path, RFC 8414's document is
// https://host/.well-known/oauth-authorization-server/path and OpenID
// Connect's https://host/path/.well-known/openid-configuration. It fails on
// a URL that is not absolute, has a query or fragment, or is plain HTTP to a
// non-loopback host without WithInsecure. It does no I/O.
//
// The store reads RFC 8414 authorization server metadata: from
// <base>/.well-known/oauth-authorization-server, and, when the server
// answers 404 there, from OpenID Connect's
// <base>/.well-known/openid-configuration. It maps token_endpoint,
// authorization_endpoint and device_authorization_endpoint; scopes,
// audience, client id and header key stay empty, so the authenticator's
// own settings apply. Its caching rules are NewRemote's. The document is
// read up to 1 MiB. It must come over HTTPS, or plain HTTP to a loopback
// host, or any HTTP with WithInsecure, redirects included: the token
// endpoint it names will receive the client's secret.
//
// The document's issuer must be the issuer it was fetched for (RFC 8414
// §3.3): baseURL, or the issuer a document URL stands for; a redirect to
// another scheme or host is not followed. A Flyte 2 server republishes its
// identity provider's document, whose issuer is the provider's: give
// WithRepublishedMetadata for it.
func NewDiscovery(baseURL string, opts ...Option) (ClientConfigStore, error) {
	o := newOptions(opts)
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("configstore: NewDiscovery: %q is not an absolute http(s) URL", redact.Clip(baseURL, 200))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("configstore: NewDiscovery: %q has a query, fragment or user info", redact.Clip(u.Redacted(), 200))
	}
	if err := checkTransport(u, o.allowHTTP); err != nil {
		return nil, fmt.Errorf("configstore: NewDiscovery: %w", err)
	}
	d := &discovery{
		issuer:    issuerOf(u),
		anyIssuer: o.anyIssuer,
		allowHTTP: o.allowHTTP,
		cache:     fetchCache{timeout: o.timeout, logger: o.logger, what: "authorization server metadata"},
	}
	client := *o.client
	client.CheckRedirect = d.checkRedirect(o.client.CheckRedirect)
	d.client = &client
	d.urls = documentURLs(u)
	return opaque{d}, nil
}

// documentURLs returns the documents to try for base: RFC 8414's, then
// OpenID Connect's; or base alone if it names a document.
func documentURLs(base *url.URL) []string {
	if strings.Contains(base.Path, "/.well-known/") {
		return []string{base.String()}
	}
	path := strings.TrimSuffix(base.Path, "/")
	rfc, oidc := *base, *base
	rfc.Path, rfc.RawPath = oauthMetadataPath+path, ""
	oidc.Path, oidc.RawPath = path+openIDConfigurationPath, ""
	return []string{rfc.String(), oidc.String()}
}

// issuerOf is the issuer a discovery URL stands for, without a trailing
// slash: the URL itself, or for a document URL the issuer RFC 8414 (the
// path after /.well-known/oauth-authorization-server) or OpenID Connect
// (the path before /.well-known/) puts it at.
func issuerOf(u *url.URL) string {
	path := u.Path
	if before, after, ok := strings.Cut(path, "/.well-known/"); ok {
		path = before
		if rest, ok := strings.CutPrefix("/.well-known/"+after, oauthMetadataPath); ok && before == "" {
			path = rest
		}
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+path, "/")
}

// checkTransport enforces the scheme rule on a document's URL.
func checkTransport(u *url.URL, allowHTTP bool) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (allowHTTP || transportsec.LoopbackHost(u.Hostname())):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%s is plain HTTP to a host that is not loopback: use https, or allow plaintext explicitly for a development cluster (Flyte's insecure: true)", redact.Clip(u.Redacted(), 200))
	}
	return fmt.Errorf("%s is not an http(s) URL", redact.Clip(u.Redacted(), 200))
}

func (d *discovery) checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if first := via[0].URL; !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
			return fmt.Errorf("redirected to another origin (%s): metadata is read only from where it was asked", redact.Clip(req.URL.Scheme+"://"+req.URL.Host, 200))
		}
		if err := checkTransport(req.URL, d.allowHTTP); err != nil {
			return fmt.Errorf("redirected: %w", err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// get returns the cached configuration, fetching the document
// first if no fetch has succeeded yet. It returns when the fetch ends or
// ctx is done, whichever comes first. An answer that is not a usable
// document is an error that wraps ErrInvalidMetadata.
func (d *discovery) get(ctx context.Context) (*ClientConfig, error) {
	return d.cache.get(ctx, d.fetch)
}

// errNotFound marks a document the server does not have (404).
var errNotFound = errors.New("not found")

func (d *discovery) fetch(ctx context.Context) (*ClientConfig, error) {
	var tried []string
	for _, u := range d.urls {
		cfg, err := d.read(ctx, u)
		if errors.Is(err, errNotFound) {
			tried = append(tried, u)
			continue
		}
		return cfg, err
	}
	return nil, fmt.Errorf("configstore: no authorization server metadata: %s answered 404", strings.Join(tried, " and "))
}

// metadataDocument is the part of RFC 8414 §2 that a client needs, in
// RFC 8414's snake_case and in the camelCase of proto3 JSON, in which
// Flyte 2 writes the document it republishes.
type metadataDocument struct {
	Issuer                      string `json:"issuer"`
	TokenEndpoint               string `json:"token_endpoint"`
	AuthorizationEndpoint       string `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`

	RevocationEndpoint string `json:"revocation_endpoint"`
	// RFC 9207.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`

	TokenEndpointCamel               string `json:"tokenEndpoint"`
	AuthorizationEndpointCamel       string `json:"authorizationEndpoint"`
	DeviceAuthorizationEndpointCamel string `json:"deviceAuthorizationEndpoint"`
	RevocationEndpointCamel          string `json:"revocationEndpoint"`
}

// clientConfig maps the document, either spelling.
func (d *metadataDocument) clientConfig() *ClientConfig {
	return &ClientConfig{
		Issuer:                        d.Issuer,
		IssuerInAuthorizationResponse: d.IssParameterSupported,
		TokenEndpoint:                 cmp.Or(d.TokenEndpoint, d.TokenEndpointCamel),
		RevocationEndpoint:            cmp.Or(d.RevocationEndpoint, d.RevocationEndpointCamel),
		AuthorizationEndpoint:         cmp.Or(d.AuthorizationEndpoint, d.AuthorizationEndpointCamel),
		DeviceAuthorizationEndpoint:   cmp.Or(d.DeviceAuthorizationEndpoint, d.DeviceAuthorizationEndpointCamel),
	}
}

// read fetches and maps one document.
func (d *discovery) read(ctx context.Context, u string) (*ClientConfig, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("configstore: metadata request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("configstore: reading %s: %w", u, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotFound
	case resp.StatusCode == http.StatusNotImplemented:
		// Flyte 2 without an identity provider (its RPC: Unimplemented).
		return nil, fmt.Errorf("configstore: %s answered HTTP 501: %w; %s", u, ErrNoIdentityProvider, noIdPHint)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("configstore: reading %s: HTTP %s", u, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return nil, fmt.Errorf("configstore: %s: content type %q is not JSON: %w", u, redact.Clip(mt, 64), ErrInvalidMetadata)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("configstore: reading %s: %w", u, err)
	}
	if int64(len(body)) > maxDocumentSize {
		return nil, fmt.Errorf("configstore: %s: document is larger than %d bytes: %w", u, maxDocumentSize, ErrInvalidMetadata)
	}
	var doc metadataDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("configstore: %s: not a JSON metadata document (%v): %w", u, redact.Clip(err.Error(), 200), ErrInvalidMetadata)
	}
	cfg := doc.clientConfig()
	if err := checkEndpoint(cfg.TokenEndpoint); err != nil {
		return nil, fmt.Errorf("configstore: %s: token_endpoint %w", u, err)
	}
	if got := strings.TrimSuffix(doc.Issuer, "/"); !d.anyIssuer && got != d.issuer {
		return nil, fmt.Errorf("configstore: %s: the document's issuer %q is not %q, the issuer it was fetched for (RFC 8414 §3.3; a Flyte 2 server that republishes its identity provider's document needs WithRepublishedMetadata): %w",
			u, redact.Clip(doc.Issuer, 200), d.issuer, ErrInvalidMetadata)
	}
	d.cache.logger.Debug("configstore: read authorization server metadata", "url", u, "issuer", doc.Issuer)
	return cfg, nil
}
