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
	if dir := os.Getenv(counterEnv); dir != "" {
		// A child process of TestOSKeyring.
		os.Exit(counterProcess(dir))
	}
	// The OS keyring's D-Bus session connection (TestOSKeyring) is the
	// process's own, kept open for its life by godbus.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/godbus/dbus/v5.newConn.func1"),
		goleak.IgnoreAnyFunction("github.com/godbus/dbus/v5.(*Conn).inWorker"))
}
