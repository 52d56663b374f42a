package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/notyet"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// fakeAuth is an authenticator.Authenticator with no token server behind
// it, for tests of the interceptors' own logic. Each refresh issues a new
// token ("Bearer fake-N"); refreshes are counted, can be made to fail or
// to wait until released. It records the values Accepted reports. It is
// also the testserver.TokenValidator of the admin server it protects: a
// token is valid from its issue until revoke.
type fakeAuth struct {
	refreshes atomic.Int64

	mu       sync.Mutex // guards the fields below
	issued   int
	token    string          // the current value, "" while none
	valid    map[string]bool // tokens (without "Bearer ") the server accepts
	fail     error           // when set, refreshes fail with it
	hold     chan struct{}   // when set, refreshes wait until it is closed
	accepted []string
}

var _ authenticator.Authenticator = (*fakeAuth)(nil)

func newFakeAuth() *fakeAuth { return &fakeAuth{valid: map[string]bool{}} }

// Credential returns the current token, if any; with none, it answers as
// a Keeper built WithLazyStart does before a server asked for a token.
func (f *fakeAuth) Credential(context.Context) (key, value string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token == "" {
		return "", "", fmt.Errorf("fake: %w", notyet.Err)
	}
	return authenticator.DefaultHeaderKey, f.token, nil
}

// Rejected issues a new token, as RefreshCredentials, whatever value.
func (f *fakeAuth) Rejected(ctx context.Context, _ string) error { return f.RefreshCredentials(ctx) }

// RefreshCredentials issues a new token, unless told to fail; told to
// hold, it first waits for the release or ctx.
func (f *fakeAuth) RefreshCredentials(ctx context.Context) error {
	f.refreshes.Add(1)
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return fmt.Errorf("fake: waiting for a token: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.issued++
	tok := fmt.Sprintf("fake-%d", f.issued)
	f.valid[tok] = true
	f.token = "Bearer " + tok
	return nil
}

// Accepted records value.
func (f *fakeAuth) Accepted(value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accepted = append(f.accepted, value)
}

// Validate accepts the tokens issued and not revoked.
func (f *fakeAuth) Validate(_ context.Context, token string) (testserver.TokenInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.valid[token] {
		return testserver.TokenInfo{}, errors.New("fake: unknown or revoked token")
	}
	return testserver.TokenInfo{}, nil
}

// current is the value FetchGRPCCallAuthMetadata returns now.
func (f *fakeAuth) current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.token
}

// revoke makes the server reject every token issued so far.
func (f *fakeAuth) revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

// setFail makes refreshes fail with err (nil: succeed again).
func (f *fakeAuth) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// holdRefreshes makes refreshes wait until the returned func is called.
func (f *fakeAuth) holdRefreshes() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.hold = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.hold = nil
			f.mu.Unlock()
			close(ch)
		})
	}
}

// acceptedValues returns what Accepted recorded.
func (f *fakeAuth) acceptedValues() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.accepted...)
}

// fakeEnv is an admin server (TLS unless cfg.plaintext) protected by a
// fakeAuth (unless cfg.open), and a connection to it through both
// interceptors built on that fakeAuth and cfg's options.
type fakeEnv struct {
	auth  *fakeAuth
	admin *testserver.AdminServer
	conn  *grpc.ClientConn
	echo  *testserver.EchoClient
}

func newFakeEnv(tb testing.TB, cfg envConfig) *fakeEnv {
	tb.Helper()
	f := newFakeAuth()
	var opts []testserver.AdminOption
	if !cfg.plaintext {
		ca, err := testserver.NewCA()
		require.NoError(tb, err)
		opts = append(opts, testserver.WithAdminTLS(ca))
	}
	if !cfg.open {
		opts = append(opts, testserver.WithValidator(f))
	}
	admin, err := testserver.NewAdminServer(opts...)
	require.NoError(tb, err)
	tb.Cleanup(admin.Close)
	conn := dial(tb, admin, f, cfg)
	return &fakeEnv{auth: f, admin: admin, conn: conn, echo: testserver.NewEchoClient(conn)}
}

// prime issues a first token.
func (e *fakeEnv) prime(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, e.auth.RefreshCredentials(tb.Context()))
	e.auth.refreshes.Store(0)
	e.admin.ResetCounters()
}

// credOK is Credential as the (key, value, ok) of a test that only asks
// whether a credential is at hand.
func credOK(key, value string, err error) (string, string, bool) { return key, value, err == nil }
