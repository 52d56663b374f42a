package interop

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flyteauth/grpcauth/internal/cachechild"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

const (
	// hydraPackage is the main package of ORY Hydra; its version is the
	// one this module's go.mod pins as a tool.
	hydraPackage = "github.com/ory/hydra/v2"
	// hydraTags are the build tags an in-memory database (DSN=memory)
	// needs.
	hydraTags = "sqlite,sqlite_omit_load_extension"
	// hydraBinDefault is where `make interop` builds Hydra, relative to
	// this package's directory; HYDRA_BIN names another binary.
	hydraBinDefault = ".bin/hydra"
	hydraBinEnv     = "HYDRA_BIN"
	// hydraLogLevelEnv sets Hydra's log level (default warn); the end of
	// its log is printed when the run fails.
	hydraLogLevelEnv = "HYDRA_LOG_LEVEL"
	// hydraLogEnv names a file to keep Hydra's whole log in; by default it
	// goes to a temporary file removed at the end.
	hydraLogEnv = "HYDRA_LOG"
	// hydraDSNEnv overrides Hydra's database (DSN); "memory" is Hydra's
	// in-memory SQLite, see hydraDSN.
	hydraDSNEnv = "HYDRA_DSN"
	// hydraMigrateTimeout bounds the SQL migrations of a fresh database.
	hydraMigrateTimeout = time.Minute

	// hydraStartAttempts bounds the starts tried when the free ports
	// picked for Hydra were taken before it could bind them.
	hydraStartAttempts = 3
	// hydraReadyTimeout bounds the wait for /health/ready on both ports.
	hydraReadyTimeout = 30 * time.Second
	// hydraStopTimeout is how long Hydra gets to exit after SIGTERM before
	// its process group is killed.
	hydraStopTimeout = 5 * time.Second
	// hydraPollEvery is how often readiness is polled.
	hydraPollEvery = 50 * time.Millisecond
	// hydraRequestTimeout bounds one admin API request of a test.
	hydraRequestTimeout = 10 * time.Second
	// hydraLogTail is how many bytes of Hydra's log are printed when the
	// run fails.
	hydraLogTail = 16 << 10

	// grantClientCredentials is the grant every test client uses.
	grantClientCredentials = "client_credentials"
)

// hy is the Hydra of this test run, started by TestMain.
var hy *hydra

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests starts Hydra, runs the tests, stops Hydra and checks that no
// goroutine and no process is left. A missing Hydra binary that cannot be
// built fails the run: these tests never skip.
func runTests(m *testing.M) int {
	if spec := os.Getenv(cachechild.Env); spec != "" {
		// A process of sharedLoginProcesses: it talks to the Hydra its
		// parent started.
		return cachechild.Main(spec)
	}
	bin, err := hydraBinary()
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	h, err := startHydra(bin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	hy = h

	code := m.Run()

	pid := h.cmd.Process.Pid
	if err := h.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: stop Hydra: %v\n", err)
		code = 1
	}
	if err := processGone(pid); err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		code = 1
	}
	if code != 0 {
		h.printLogTail(os.Stderr)
	}
	h.cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "interop: goroutines left behind: %v\n", err)
			code = 1
		}
	}
	return code
}

// hydraBinary returns the path of the Hydra binary: $HYDRA_BIN, else
// .bin/hydra, which is built first when missing.
func hydraBinary() (string, error) {
	if p := os.Getenv(hydraBinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s names a Hydra binary that cannot be used: %w", hydraBinEnv, err)
		}
		return filepath.Abs(p)
	}
	p, err := filepath.Abs(hydraBinDefault)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	// `go test` puts the go command of its own toolchain first in PATH.
	fmt.Fprintf(os.Stderr, "interop: %s is missing; building %s (a few minutes)\n", p, hydraPackage)
	cmd := exec.Command("go", "build", "-tags", hydraTags, "-o", p, hydraPackage)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build Hydra into %s (run `make interop`, or build it by hand with `cd interop && go build -tags %s -o %s %s`): %w",
			p, hydraTags, hydraBinDefault, hydraPackage, err)
	}
	return p, nil
}

// hydra is a running Hydra process and the URLs of its two ports.
type hydra struct {
	cmd       *exec.Cmd
	cancel    context.CancelFunc
	exited    chan struct{} // closed when cmd.Wait returns
	waitErr   error         // cmd.Wait's error, set before exited closes
	dir       string        // temporary directory: database, log
	logPath   string
	publicURL string // such as http://127.0.0.1:40123
	adminURL  string

	// http makes every request of the tests to Hydra; runTests closes
	// its idle connections so no goroutine outlives the run.
	http *http.Client
	// introspect introspects tokens on the admin port.
	introspect *testserver.IntrospectionValidator
}

// startHydra starts Hydra on free loopback ports and waits until both
// ports are ready. Ports are picked by binding port 0 and releasing it, so
// another process may take one first; the start is then tried again.
func startHydra(bin string) (*hydra, error) {
	var errs []error
	for range hydraStartAttempts {
		h, err := tryStartHydra(bin)
		if err == nil {
			return h, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("start Hydra: %w", errors.Join(errs...))
}

func tryStartHydra(bin string) (_ *hydra, err error) {
	ports, err := freeLoopbackPorts(2)
	if err != nil {
		return nil, err
	}
	publicPort, adminPort := ports[0], ports[1]
	dir, err := os.MkdirTemp("", "grpcauth-interop-hydra-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	logPath := cmp.Or(os.Getenv(hydraLogEnv), filepath.Join(dir, "hydra.log"))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor

	secret, err := randomHex(32)
	if err != nil {
		return nil, err
	}
	dsn := hydraDSN(dir)
	env := append(os.Environ(),
		"DSN="+dsn,
		"SECRETS_SYSTEM="+secret,
		"URLS_SELF_ISSUER=http://127.0.0.1:"+strconv.Itoa(publicPort)+"/",
		"SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_PUBLIC_PORT="+strconv.Itoa(publicPort),
		"SERVE_ADMIN_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT="+strconv.Itoa(adminPort),
		"LOG_LEVEL="+cmp.Or(os.Getenv(hydraLogLevelEnv), "warn"),
		"SQA_OPT_OUT=true",
		// Hydra still announces its opt-out to an address on the
		// internet at start-up; these tests talk to loopback only, so
		// everything that is not loopback goes to a closed local port.
		"HTTP_PROXY=http://127.0.0.1:9",
		"HTTPS_PROXY=http://127.0.0.1:9",
		"NO_PROXY=127.0.0.1,localhost,::1",
	)
	if dsn != "memory" {
		if err := migrateHydra(bin, env, dir, logFile); err != nil {
			return nil, fmt.Errorf("%w (log: %s)", err, logPath)
		}
	}
	h := &hydra{
		exited:    make(chan struct{}),
		dir:       dir,
		logPath:   logPath,
		publicURL: "http://127.0.0.1:" + strconv.Itoa(publicPort),
		adminURL:  "http://127.0.0.1:" + strconv.Itoa(adminPort),
		http: &http.Client{
			Timeout: hydraRequestTimeout,
			// Only loopback: never a proxy from the environment.
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
		},
	}
	h.introspect, err = testserver.NewIntrospectionValidator(h.adminURL, h.http)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	cmd := exec.CommandContext(ctx, bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so that stopping it reaches anything
		// it started, and so that a Ctrl-C meant for `go test` reaches
		// it only through us.
		Setpgid: true,
		// If the test binary dies (a -timeout panic, a kill), the kernel
		// kills Hydra too.
		Pdeathsig: syscall.SIGKILL,
	}
	cmd.Cancel = func() error {
		// SIGTERM to the whole group; WaitDelay escalates to SIGKILL.
		return signalGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = hydraStopTimeout
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	h.cmd = cmd
	go func() {
		h.waitErr = cmd.Wait()
		// Whatever way it ended, nothing of its group may survive it.
		_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		close(h.exited)
	}()

	if err := h.waitReady(); err != nil {
		_ = h.stop()
		h.printLogTail(os.Stderr)
		return nil, err
	}
	return h, nil
}

// hydraDSN returns Hydra's database: $HYDRA_DSN, else a SQLite file in dir
// in WAL mode. Not Hydra's in-memory database (DSN=memory): that is SQLite's
// shared cache, whose table locks make a token introspection that runs
// while another token is being stored fail with "Unable to serialize access
// due to a concurrent update", which Hydra answers as {"active":false}. The
// admin server then rejects a valid token, a few times per 20-second load
// run on a busy machine. In WAL mode readers never wait for the writer, and
// writers wait for each other (busy timeout) instead of failing; the data
// need not survive a crash, so commits skip fsync.
func hydraDSN(dir string) string {
	if dsn := os.Getenv(hydraDSNEnv); dsn != "" {
		return dsn
	}
	return "sqlite://" + filepath.Join(dir, "hydra.sqlite") + "?_fk=true&_journal_mode=WAL&_synchronous=OFF&_busy_timeout=10000"
}

// migrateHydra creates the tables of a fresh database (DSN in env); the
// in-memory database needs no such step, Hydra migrates it at start.
func migrateHydra(bin string, env []string, dir string, log io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), hydraMigrateTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "migrate", "sql", "up", "--read-from-env", "--yes")
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hydra migrate sql up: %w", err)
	}
	return nil
}

// waitReady polls /health/ready on both ports until both answer 200, the
// process exits or hydraReadyTimeout passes.
func (h *hydra) waitReady() error {
	deadline := time.NewTimer(hydraReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(hydraPollEvery)
	defer tick.Stop()
	for {
		if h.ready(h.publicURL) && h.ready(h.adminURL) {
			return nil
		}
		select {
		case <-h.exited:
			return fmt.Errorf("hydra exited before it was ready: %v (log: %s)", h.waitErr, h.logPath)
		case <-deadline.C:
			return fmt.Errorf("hydra not ready on %s and %s after %v (log: %s)", h.publicURL, h.adminURL, hydraReadyTimeout, h.logPath)
		case <-tick.C:
		}
	}
}

func (h *hydra) ready(base string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/ready", nil)
	if err != nil {
		return false
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// stop ends Hydra (SIGTERM to its group, SIGKILL after hydraStopTimeout)
// and waits until it has exited. It may be called more than once.
func (h *hydra) stop() error {
	h.cancel()
	select {
	case <-h.exited:
	case <-time.After(2 * hydraStopTimeout):
		// WaitDelay should have killed it long ago.
		_ = signalGroup(h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.exited
	}
	h.http.CloseIdleConnections()
	var exitErr *exec.ExitError
	switch {
	case h.waitErr == nil:
		return nil
	case errors.As(h.waitErr, &exitErr), errors.Is(h.waitErr, context.Canceled):
		// Ended by our signal, as intended.
		return nil
	default:
		return h.waitErr
	}
}

// cleanup removes Hydra's temporary directory; call it after stop.
func (h *hydra) cleanup() { _ = os.RemoveAll(h.dir) }

// printLogTail writes the end of Hydra's log to w.
func (h *hydra) printLogTail(w io.Writer) {
	data, err := os.ReadFile(h.logPath)
	if err != nil {
		return
	}
	if len(data) > hydraLogTail {
		data = data[len(data)-hydraLogTail:]
	}
	fmt.Fprintf(w, "--- end of Hydra's log (%s) ---\n%s\n---\n", h.logPath, data)
}

// signalGroup sends sig to the process group led by pid; a group that no
// longer exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// processGone checks that neither the process pid nor any member of its
// process group still exists.
func processGone(pid int) error {
	for _, target := range []int{pid, -pid} {
		if err := syscall.Kill(target, 0); !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("Hydra (pid %d) left a process behind: kill(%d, 0) = %v", pid, target, err)
		}
	}
	return nil
}

// freeLoopbackPorts returns n distinct TCP ports that were free on
// 127.0.0.1 a moment ago.
func freeLoopbackPorts(n int) ([]int, error) {
	var ports []int
	var lis []net.Listener
	defer func() {
		for _, l := range lis {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lis = append(lis, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// The admin API, for the tests.

// TokenURL returns Hydra's token endpoint.
func (h *hydra) TokenURL() string { return h.publicURL + "/oauth2/token" }

// hydraClient is an OAuth2 client registered in Hydra.
type hydraClient struct {
	ID     string
	Secret string
}

// clientSpec describes a client to register; zero fields get defaults.
type clientSpec struct {
	// Secret is the client secret; "" generates one.
	Secret string
	// Scopes are the scopes the client may request.
	Scopes []string
	// Audiences are the audiences the client may request.
	Audiences []string
	// Lifetime is the access token lifetime; 0 keeps Hydra's (one hour).
	Lifetime time.Duration
}

// CreateClient registers a confidential client-credentials client with a
// unique id and deletes it when the test ends.
func (h *hydra) CreateClient(t *testing.T, spec clientSpec) hydraClient {
	t.Helper()
	suffix, err := randomHex(4)
	require.NoError(t, err)
	c := hydraClient{ID: "interop-" + sanitize(t.Name()) + "-" + suffix, Secret: spec.Secret}
	if c.Secret == "" {
		c.Secret, err = randomHex(16)
		require.NoError(t, err)
	}
	body := map[string]any{
		"client_id":                  c.ID,
		"client_secret":              c.Secret,
		"grant_types":                []string{grantClientCredentials},
		"response_types":             []string{"token"},
		"token_endpoint_auth_method": "client_secret_basic",
		"scope":                      strings.Join(spec.Scopes, " "),
		"audience":                   nonNil(spec.Audiences),
	}
	var created struct {
		ClientID string `json:"client_id"`
	}
	h.adminJSON(t, http.MethodPost, "/admin/clients", body, http.StatusCreated, &created)
	require.Equal(t, c.ID, created.ClientID)
	t.Cleanup(func() { h.deleteClient(t, c.ID, true) })

	if spec.Lifetime > 0 {
		h.adminJSON(t, http.MethodPut, "/admin/clients/"+url.PathEscape(c.ID)+"/lifespans",
			map[string]string{"client_credentials_grant_access_token_lifespan": spec.Lifetime.String()},
			http.StatusOK, nil)
	}
	return c
}

// DeleteClient removes a client from Hydra.
func (h *hydra) DeleteClient(t *testing.T, id string) {
	t.Helper()
	h.deleteClient(t, id, false)
}

func (h *hydra) deleteClient(t *testing.T, id string, missingOK bool) {
	t.Helper()
	want := []int{http.StatusNoContent}
	if missingOK {
		want = append(want, http.StatusNotFound)
	}
	h.adminJSON(t, http.MethodDelete, "/admin/clients/"+url.PathEscape(id), nil, want[0], nil, want[1:]...)
}

// Introspect returns Hydra's introspection of token.
func (h *hydra) Introspect(t *testing.T, token string) testserver.Introspection {
	t.Helper()
	in, err := h.introspect.Introspect(t.Context(), token)
	require.NoError(t, err)
	return in
}

// Revoke revokes token at Hydra's public revocation endpoint (RFC 7009),
// authenticating as c with HTTP Basic, id and secret form-url-encoded.
func (h *hydra) Revoke(t *testing.T, c hydraClient, token string) {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.publicURL+"/oauth2/revoke", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := h.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "revocation")
}

// adminJSON sends a JSON request to the admin API and decodes the JSON
// answer into out (unless nil), requiring the status want (or one of
// alsoOK).
func (h *hydra) adminJSON(t *testing.T, method, path string, in any, want int, out any, alsoOK ...int) {
	t.Helper()
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		require.NoError(t, err)
		body = bytes.NewReader(data)
	}
	// Cleanups run after t.Context is done, so the request has its own.
	ctx, cancel := context.WithTimeout(context.Background(), hydraRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.adminURL+path, body)
	require.NoError(t, err)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	ok := resp.StatusCode == want
	for _, s := range alsoOK {
		ok = ok || resp.StatusCode == s
	}
	// Hydra's admin answers never echo a client secret back.
	require.Truef(t, ok, "%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, data)
	if out != nil && resp.StatusCode == want {
		require.NoError(t, json.Unmarshal(data, out), "%s %s", method, path)
	}
}

// sanitize turns a test name into something fit for a client id.
func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '-'
	}, name)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
