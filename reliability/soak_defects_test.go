package reliability_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSoakSkipsUnderShort runs this test binary again with -test.short and
// only TestSoak: the soak must skip at once rather than run its 30 s.
func TestSoakSkipsUnderShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.short", "-test.run", "^TestSoak$", "-test.v", "-test.count", "1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("go test -short ran the soak: no answer within 20 s\n%s", out)
	}
	if err != nil {
		t.Fatalf("go test -short -run TestSoak failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- SKIP: TestSoak") {
		t.Fatalf("go test -short did not skip TestSoak:\n%s", out)
	}
}
