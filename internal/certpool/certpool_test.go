package certpool_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flyteauth/grpcauth/internal/certpool"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWithFile(t *testing.T) {
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	path, err := ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)

	pool, err := certpool.WithFile(path)
	require.NoError(t, err)
	tlsCfg, err := ca.ServerTLSConfig()
	require.NoError(t, err)
	leaf := tlsCfg.Certificates[0].Leaf
	require.NotNil(t, leaf)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"})
	assert.NoError(t, err, "the pool trusts the file's CA")
}

func TestWithFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := certpool.WithFile(filepath.Join(dir, "missing.pem"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.pem")

	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	_, err = certpool.WithFile(notPEM)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no PEM certificate in "+notPEM)
}
