package retry

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
)

// A required credential that keeps failing is not asked again at every
// call: calls within the keeper's pause share the failure.
func TestRequiredCredentialFailureIsNotRetriedPerCall(t *testing.T) {
	for _, required := range []bool{false, true} {
		runs := filepath.Join(t.TempDir(), "runs")
		flow, err := authenticator.NewCommandFlow([]string{"sh", "-c", "echo x >> " + runs + "; exit 3"})
		if err != nil {
			t.Fatal(err)
		}
		k, err := authenticator.New("dns:///flyte.example.com", configstore.NewStatic(configstore.ClientConfig{}), flow,
			authenticator.WithHeaderKey("proxy-authorization"))
		if err != nil {
			t.Fatal(err)
		}
		p := &Policy{Creds: k, Required: required, Logger: slog.New(slog.DiscardHandler)}
		for range 5 { // five calls in a row, well inside the 1 s retry pause
			_, _, _ = p.Credential(context.Background())
		}
		b, _ := os.ReadFile(runs)
		t.Logf("Required=%v: 5 sequential calls ran the failing command %d times; Stats.TokenRequests=%d",
			required, strings.Count(string(b), "x"), k.Stats().TokenRequests)
		k.Close()
	}
}
