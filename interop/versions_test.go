package interop

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLibraryDependencyVersions checks that these tests build the library
// with the dependency versions its own go.mod selects. This module also
// requires Hydra, and minimal version selection would quietly upgrade a
// shared dependency (gRPC, x/oauth2, ...) if Hydra asked for a newer one;
// the interop tests would then prove something about a build no user has.
// Both go.mod files list every module their builds use (Go 1.17 and
// later), so comparing them is enough; a library requirement that this
// module's go.mod lacks is one its build does not use. When this fails, raise the
// library's requirement to the version shown, or run `go mod tidy` in both
// modules after changing the library's.
func TestLibraryDependencyVersions(t *testing.T) {
	library := requirements(t, "../go.mod")
	interop := requirements(t, "go.mod")
	require.NotEmpty(t, library)
	for path, want := range library {
		got, ok := interop[path]
		if !ok {
			// Not in this module's build at all (such as a module that
			// only the library's benchmarks import): nothing to compare.
			t.Logf("%s, required by the library, is not used by the interop build", path)
			continue
		}
		assert.Equal(t, want, got, "version of %s: the library selects %s, the interop tests build it with %s", path, want, got)
	}
}

// requirements returns the module paths and versions of the require
// directives of a go.mod file.
func requirements(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	out := make(map[string]string)
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		line = strings.TrimSpace(line)
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		if fields := strings.Fields(line); len(fields) == 2 {
			out[fields[0]] = fields[1]
		}
	}
	require.NoError(t, sc.Err())
	return out
}
