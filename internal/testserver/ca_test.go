package testserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestCA(t *testing.T) {
	ca, err := testserver.NewCA()
	require.NoError(t, err)

	block, rest := pem.Decode(ca.CertPEM())
	require.NotNil(t, block)
	assert.Empty(t, rest)
	caCert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	assert.True(t, caCert.IsCA)

	path, err := ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, "ca.pem", filepath.Base(path))
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, ca.CertPEM(), onDisk)

	cfg, err := ca.ServerTLSConfig()
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	require.Len(t, cfg.Certificates, 1)
	leaf := cfg.Certificates[0].Leaf
	require.NotNil(t, leaf)
	assert.LessOrEqual(t, time.Until(leaf.NotAfter), 25*time.Hour)

	for _, host := range []string{"localhost", "bufnet", "127.0.0.1", "::1"} {
		opts := x509.VerifyOptions{DNSName: host, Roots: ca.CertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if ip := net.ParseIP(host); ip != nil {
			opts.DNSName = ip.String()
		}
		_, err := leaf.Verify(opts)
		assert.NoError(t, err, host)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: ca.CertPool()})
	assert.Error(t, err)

	other, err := testserver.NewCA()
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: other.CertPool()})
	assert.Error(t, err, "another CA does not vouch for the leaf")

	assert.Equal(t, uint16(tls.VersionTLS12), ca.ClientTLSConfig().MinVersion)
	assert.NotNil(t, ca.ClientTLSConfig().RootCAs)
}
