package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity of generated certificates. NotBefore is backdated a little so a
// client whose clock lags does not reject a fresh certificate.
const (
	certBackdate     = 5 * time.Minute
	caValidity       = 48 * time.Hour
	leafValidity     = 24 * time.Hour
	caCertFileName   = "ca.pem"
	caCertFileMode   = 0o644
	serialNumberBits = 128
)

// CA is a throwaway certificate authority (ECDSA P-256) generated at run
// time. It signs server certificates for the fakes in this package. It is
// immutable after NewCA returns and safe for concurrent use.
type CA struct {
	key     *ecdsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
	pool    *x509.CertPool
}

// NewCA generates a new certificate authority with a fresh key. It is safe
// for concurrent use.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testserver: generate CA key: %w", err)
	}
	serial, err := newSerialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"grpcauth testserver"}, CommonName: "grpcauth testserver CA"},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testserver: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testserver: parse CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		key:     key,
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pool:    pool,
	}, nil
}

// CertPEM returns the CA certificate, PEM-encoded. The caller owns the
// returned slice. It is safe for concurrent use.
func (ca *CA) CertPEM() []byte {
	return append([]byte(nil), ca.certPEM...)
}

// CertPool returns a new pool holding only the CA certificate; the caller
// may add to it. It is safe for concurrent use.
func (ca *CA) CertPool() *x509.CertPool {
	return ca.pool.Clone()
}

// WriteCertFile writes the CA certificate, PEM-encoded, to dir/ca.pem and
// returns the file's path. It is safe for concurrent use with different
// directories.
func (ca *CA) WriteCertFile(dir string) (path string, err error) {
	path = filepath.Join(dir, caCertFileName)
	if err := os.WriteFile(path, ca.certPEM, caCertFileMode); err != nil {
		return "", fmt.Errorf("testserver: write CA certificate: %w", err)
	}
	return path, nil
}

// ServerTLSConfig returns a server configuration with a new leaf certificate
// signed by the CA, valid for a day for the DNS names localhost and bufnet
// and the IP addresses 127.0.0.1 and ::1. It is safe for concurrent use.
func (ca *CA) ServerTLSConfig() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testserver: generate server key: %w", err)
	}
	serial, err := newSerialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"grpcauth testserver"}, CommonName: "localhost"},
		NotBefore:    now.Add(-certBackdate),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "bufnet"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("testserver: create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testserver: parse server certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{der, ca.cert.Raw},
			PrivateKey:  key,
			Leaf:        leaf,
		}},
		MinVersion: tls.VersionTLS12,
	}, nil
}

// ClientTLSConfig returns a client configuration that trusts only the CA.
// It is safe for concurrent use.
func (ca *CA) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		RootCAs:    ca.CertPool(),
		MinVersion: tls.VersionTLS12,
	}
}

func newSerialNumber() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), serialNumberBits))
	if err != nil {
		return nil, fmt.Errorf("testserver: generate serial number: %w", err)
	}
	return serial, nil
}
