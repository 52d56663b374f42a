package retry

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/notyet"
)

// A credential that keeps failing ends each call unsent with its error, and
// is not asked again at every call: calls within the keeper's pause share
// the failure.
func TestFailingCredentialEndsCallsAndIsNotAskedPerCall(t *testing.T) {
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
	defer k.Close()
	p := &Policy{Creds: k, Logger: slog.New(slog.DiscardHandler)}
	var first error
	for i := range 5 { // five calls in a row, well inside the 1 s pause
		_, value, err := p.Credential(context.Background())
		if err == nil || value != "" {
			t.Fatalf("call %d: got credential %q, error %v; want the command's failure", i, value, err)
		}
		var ce *authenticator.CommandError
		if !errors.As(err, &ce) {
			t.Fatalf("call %d: error %v does not reach the *authenticator.CommandError", i, err)
		}
		if i == 0 {
			first = err
		}
	}
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "x"); n != 1 {
		t.Errorf("5 calls ran the failing command %d times, want 1 (first error: %v)", n, first)
	}
}

// Only a source that has no credential yet, and waits for a server to ask,
// lets a call go out without one.
func TestOnlyNotYetSendsWithoutCredential(t *testing.T) {
	for _, tc := range []struct {
		err      error
		wantSend bool
	}{
		{errors.New("token endpoint: 503"), false},
		{authenticator.ErrClosed, false},
		{notyet.Err, true},
		{errors.Join(errors.New("lazy"), notyet.Err), true},
	} {
		p := &Policy{Creds: failing{tc.err}, Logger: slog.New(slog.DiscardHandler)}
		_, _, err := p.Credential(context.Background())
		if sent := err == nil; sent != tc.wantSend {
			t.Errorf("source error %v: call sent=%v (error %v), want sent=%v", tc.err, sent, err, tc.wantSend)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := p.Credential(ctx); err == nil {
			t.Errorf("source error %v, caller's context ended: call sent", tc.err)
		}
	}
}

// failing is a credential source whose every answer is err.
type failing struct{ err error }

func (f failing) Credential(context.Context) (string, string, error) { return "", "", f.err }

func (failing) Rejected(context.Context, string) error { return nil }
func (failing) Accepted(string)                        {}
