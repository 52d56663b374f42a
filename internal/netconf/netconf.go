// Package netconf builds the TLS settings and HTTP clients of the module
// from Flyte's connection keys (caCertFilePath, insecureSkipVerify,
// httpProxyURL), once, so that FlyteAdmin, its token endpoint, discovery
// and connect-go calls are trusted and proxied the same way.
package netconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/secretfile"
)

// maxCAFile bounds a CA file: a bundle of every public root is about
// 250 KiB.
const maxCAFile = 4 << 20

// Settings are the connection keys of a Flyte config.
type Settings struct {
	// CAFile names PEM certificates to trust besides the system's roots.
	CAFile string
	// SkipVerify turns off certificate verification.
	SkipVerify bool
	// ProxyURL is the HTTP proxy of HTTP requests ("" for the
	// environment's HTTP_PROXY, HTTPS_PROXY and NO_PROXY).
	ProxyURL string
}

// CertPool returns the system's roots (an empty pool where the system has
// none) plus the PEM certificates in the file at path. The file is read
// bounded in size and time, and a FIFO or device is refused, never waited
// on. Its errors name the file.
func CertPool(path string) (*x509.CertPool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pem, err := secretfile.Read(ctx, path, maxCAFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// TLS returns the TLS configuration of s: TLS 1.2 or later, the system's
// roots plus CAFile, no verification with SkipVerify.
func (s Settings) TLS() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.SkipVerify}
	if s.CAFile != "" {
		pool, err := CertPool(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caCertFilePath: %w", err)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// Transport returns a new HTTP transport with s's TLS settings and proxy.
func (s Settings) Transport() (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.ProxyURL != "" {
		u, err := url.Parse(s.ProxyURL)
		// The URL is not echoed whole: it may hold proxy credentials.
		if err != nil {
			return nil, errors.New("httpProxyURL: the proxy URL cannot be parsed")
		}
		if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			return nil, fmt.Errorf("httpProxyURL: want scheme://host:port with scheme http, https or socks5, got %q", redact.URL(s.ProxyURL))
		}
		tr.Proxy = http.ProxyURL(u)
	}
	tlsCfg, err := s.TLS()
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = tlsCfg
	return tr, nil
}

// NoRedirects is an http.Client's CheckRedirect that follows none: a
// token endpoint that redirects is misconfigured, and following it would
// send the client's credentials on to wherever it points.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
