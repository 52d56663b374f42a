package reliability_test

import (
	"flag"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var (
	soakFor = flag.Duration("soak", 30*time.Second,
		"how long TestSoak runs its callers; CI uses the default, longer runs such as -soak=2m find rarer races")
	matrixOut = flag.String("matrix.out", "",
		"if set, TestFaultMatrix writes the observed behaviour of every fault as a markdown table to this file")
)

// TestMain checks, after all tests, that no goroutine outlived them. The
// fault matrix and the soak also check after each fault and run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
