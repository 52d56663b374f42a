package authenticator

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/flyteauth/grpcauth/internal/certpool"
)

// newHTTPClient builds the one client that makes the token requests.
func newHTTPClient(o *options) (*http.Client, error) {
	if o.httpClient != nil {
		if o.proxyURL != "" || o.caCertFile != "" || o.skipVerify {
			return nil, errors.New("WithHTTPClient cannot be combined with WithHTTPProxyURL, WithCACertFile or WithInsecureSkipVerify: configure the client's transport instead")
		}
		return o.httpClient, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.proxyURL != "" {
		u, err := url.Parse(o.proxyURL)
		// The URL is not echoed: it may hold proxy credentials.
		if err != nil {
			return nil, errors.New("WithHTTPProxyURL: the proxy URL cannot be parsed")
		}
		if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			return nil, fmt.Errorf("WithHTTPProxyURL: want scheme://host:port with scheme http, https or socks5, got %q", u.Redacted())
		}
		tr.Proxy = http.ProxyURL(u)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caCertFile != "" {
		pool, err := certpool.WithFile(o.caCertFile)
		if err != nil {
			return nil, fmt.Errorf("WithCACertFile: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	if o.skipVerify {
		tlsCfg.InsecureSkipVerify = true
	}
	tr.TLSClientConfig = tlsCfg
	return &http.Client{
		Transport: tr,
		// A token endpoint that redirects is misconfigured; following it
		// would send the client's credentials on to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
