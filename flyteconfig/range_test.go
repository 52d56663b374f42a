package flyteconfig_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
)

// A numeric key out of range is refused at load, with the file, the key
// and the line, so that a config that loads also dials.
func TestNumericKeysRangeChecked(t *testing.T) {
	for key, value := range map[string]string{
		"maxRetries":          "9223372036854775807",
		"maxMessageSizeBytes": "4294967296",
	} {
		t.Run(key, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(path, []byte("admin:\n  endpoint: dns:///x:443\n  "+key+": "+value+"\n"), 0o600))
			_, err := flyteconfig.Load(flyteconfig.Options{File: path, LookupEnv: func(string) (string, bool) { return "", false }, HomeDir: t.TempDir()})
			var fe *flyteconfig.Error
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, path, fe.Source)
			assert.Equal(t, "admin."+key, fe.Key)
			assert.Equal(t, 3, fe.Line)
			assert.Contains(t, err.Error(), "at most")
		})
	}
}
