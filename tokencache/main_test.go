package tokencache_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		// A child process of TestTwoProcessesShareOneCache.
		os.Exit(writerProcess(dir, os.Getenv(helperNameEnv)))
	}
	goleak.VerifyTestMain(m)
}
