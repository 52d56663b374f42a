// Package certpool builds the certificate pools that the dial helper and the
// authenticator trust: the system's roots plus the PEM certificates of a
// Flyte caCertFilePath, so that FlyteAdmin and its token endpoint are
// verified the same way.
package certpool

import (
	"crypto/x509"
	"fmt"
	"os"
)

// WithFile returns the system's roots (an empty pool where the system has
// none) plus the PEM certificates in the file at path. Its errors name the
// file. It is safe for concurrent use.
func WithFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err // a *PathError, which names the file
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
