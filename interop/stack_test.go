package interop

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/flyteconfig"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// callTimeout bounds one echo call; it is a deadline, never something a
// test measures.
const callTimeout = 10 * time.Second

// specialSecret holds every character that form-url-encoding changes, and
// a space: Hydra accepts it only if the client encodes the Basic
// credentials as RFC 6749 §2.3.1 says.
const specialSecret = "s3cr3t+/:%&=with space"

// stack is one test's world: an OAuth2 client registered in Hydra, and an
// admin server over TLS whose AuthMetadataService points at Hydra and whose
// echo service accepts only tokens that Hydra's introspection calls active.
type stack struct {
	client hydraClient
	admin  *testserver.AdminServer
	tokens *tokenRecorder
	caFile string
	dir    string
}

// stackSpec describes a stack; zero fields get defaults.
type stackSpec struct {
	// client is the OAuth2 client to register in Hydra.
	client clientSpec
	// public is what GetPublicClientConfig answers (default: empty).
	public *authmetapb.PublicClientAuthConfigResponse
}

func newStack(t *testing.T, spec stackSpec) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir(), client: hy.CreateClient(t, spec.client)}
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	s.caFile, err = ca.WriteCertFile(s.dir)
	require.NoError(t, err)
	s.tokens = &tokenRecorder{v: hy.introspect, seen: make(map[string]bool)}
	s.admin, err = testserver.NewAdminServer(
		testserver.WithTCP(),
		testserver.WithAdminTLS(ca),
		testserver.WithValidator(s.tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{
			Issuer:                            hy.publicURL + "/",
			TokenEndpoint:                     hy.TokenURL(),
			GrantTypesSupported:               []string{grantClientCredentials},
			TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"},
		}),
		testserver.WithPublicClientConfig(spec.public),
	)
	require.NoError(t, err)
	t.Cleanup(s.admin.Close)
	return s
}

// fileSpec is what goes into a Flyte config file beyond the connection
// settings and the client id.
type fileSpec struct {
	// secret is the client secret, written to a file that
	// clientSecretLocation names, followed by a newline (which must be
	// trimmed); "" uses the registered client's secret.
	secret   string
	scopes   []string
	audience string
}

// writeConfig writes a Flyte config file (~/.flyte/config.yaml) for the
// stack's admin server and client, with authType ClientSecret, and returns
// its path.
func (s *stack) writeConfig(t *testing.T, f fileSpec) string {
	t.Helper()
	secret := f.secret
	if secret == "" {
		secret = s.client.Secret
	}
	secretFile := filepath.Join(t.TempDir(), "client_secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))

	var b strings.Builder
	fmt.Fprintf(&b, "admin:\n")
	fmt.Fprintf(&b, "  endpoint: %s\n", yamlString("dns:///"+s.admin.Addr()))
	fmt.Fprintf(&b, "  insecure: false\n")
	fmt.Fprintf(&b, "  caCertFilePath: %s\n", yamlString(s.caFile))
	fmt.Fprintf(&b, "  authType: ClientSecret\n")
	fmt.Fprintf(&b, "  clientId: %s\n", yamlString(s.client.ID))
	fmt.Fprintf(&b, "  clientSecretLocation: %s\n", yamlString(secretFile))
	if len(f.scopes) > 0 {
		fmt.Fprintf(&b, "  scopes:\n")
		for _, sc := range f.scopes {
			fmt.Fprintf(&b, "    - %s\n", yamlString(sc))
		}
	}
	if f.audience != "" {
		fmt.Fprintf(&b, "  audience: %s\n", yamlString(f.audience))
	}
	// A section of Flyte's that grpcauth ignores, as real files have.
	fmt.Fprintf(&b, "logger:\n  show-source: true\n  level: 0\n")

	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

// loadConfig reads a config file the way a user's program does, with no
// environment variables.
func loadConfig(t *testing.T, path string) grpcauth.Config {
	t.Helper()
	loaded, err := flyteconfig.Load(flyteconfig.Options{File: path, LookupEnv: func(string) (string, bool) { return "", false }, HomeDir: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, path, loaded.Source("clientId"), "the client id must come from the file")
	return loaded.Config
}

// dial builds a client with grpcauth.New from cfg, logging at debug level
// into the returned logs, and closes it when the test ends.
func dial(t *testing.T, cfg grpcauth.Config, opts ...grpcauth.Option) (*grpcauth.Client, *testserver.LogBuffer) {
	t.Helper()
	l := new(testserver.LogBuffer)
	logger := slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := grpcauth.New(cfg, append([]grpcauth.Option{grpcauth.WithLogger(logger)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	return c, l
}

// unary makes one unary echo call with its own deadline.
func unary(ctx context.Context, e *testserver.EchoClient, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	got, err := e.Unary(ctx, msg)
	if err == nil && got != msg {
		return fmt.Errorf("echo answered %q, want %q", got, msg)
	}
	return err
}

// tokenRecorder is the admin server's TokenValidator: it asks Hydra
// through the IntrospectionValidator and remembers which tokens it was
// shown, so a test can count the tokens a client used. It is safe for
// concurrent use.
type tokenRecorder struct {
	v *testserver.IntrospectionValidator

	mu        sync.Mutex // guards the fields below
	seen      map[string]bool
	firstSeen map[string]time.Time
	order     []string        // distinct tokens, first seen first
	ages      []time.Duration // of the tokens at their failed validations
	calls     int
	failures  map[string]int // why Validate failed, by error text
	lastValid string
	lastInfo  testserver.TokenInfo
}

// Validate implements testserver.TokenValidator.
func (r *tokenRecorder) Validate(ctx context.Context, token string) (testserver.TokenInfo, error) {
	info, err := r.v.Validate(ctx, token)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if !r.seen[token] {
		r.seen[token] = true
		r.order = append(r.order, token)
		if r.firstSeen == nil {
			r.firstSeen = make(map[string]time.Time)
		}
		r.firstSeen[token] = time.Now()
	}
	if err != nil {
		r.ages = append(r.ages, time.Since(r.firstSeen[token]))
		if r.failures == nil {
			r.failures = make(map[string]int)
		}
		r.failures[err.Error()]++
		return info, err
	}
	r.lastValid, r.lastInfo = token, info
	return info, nil
}

// Distinct returns how many different tokens were presented.
func (r *tokenRecorder) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// Failures describes the failed validations: why (the error texts, which
// never contain the token) and how often, and how long after its first use
// each refused token was refused.
func (r *tokenRecorder) Failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%v; token ages at refusal: %v", r.failures, r.ages)
}

// Last returns the token of the latest successful validation and its info.
func (r *tokenRecorder) Last() (string, testserver.TokenInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastValid, r.lastInfo
}

// yamlString quotes s as a YAML double-quoted scalar; for the ASCII text
// used here, Go's quoting is YAML's.
func yamlString(s string) string { return strconv.Quote(s) }
