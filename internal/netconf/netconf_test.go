package netconf_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWithFile(t *testing.T) {
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	path, err := ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)

	pool, err := netconf.CertPool(path)
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
	_, err := netconf.CertPool(filepath.Join(dir, "missing.pem"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.pem")

	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	_, err = netconf.CertPool(notPEM)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no PEM certificate in "+notPEM)
}

// Bad connection settings are errors that name the key and never echo a
// proxy URL's credentials.
func TestSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	missing := filepath.Join(dir, "missing.pem")
	for name, c := range map[string]struct {
		s       netconf.Settings
		want    []string
		notWant string
	}{
		"missing CA file":       {netconf.Settings{CAFile: missing}, []string{"caCertFilePath", missing}, ""},
		"CA file without PEM":   {netconf.Settings{CAFile: notPEM}, []string{"caCertFilePath", "no PEM certificate", notPEM}, ""},
		"CA file is a device":   {netconf.Settings{CAFile: "/dev/zero"}, []string{"caCertFilePath", "/dev/zero"}, ""},
		"unparsable proxy URL":  {netconf.Settings{ProxyURL: "http://user:proxy-password@[::1"}, []string{"httpProxyURL", "cannot be parsed"}, "proxy-password"},
		"proxy URL, no scheme":  {netconf.Settings{ProxyURL: "proxy.example:3128"}, []string{"httpProxyURL"}, ""},
		"proxy URL, bad scheme": {netconf.Settings{ProxyURL: "ftp://user:proxy-password@proxy.example:21"}, []string{"httpProxyURL", "scheme"}, "proxy-password"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.s.Transport()
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			if c.notWant != "" {
				assert.NotContains(t, err.Error(), c.notWant)
			}
		})
	}
}
