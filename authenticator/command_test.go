//go:build unix

package authenticator_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// script writes an executable sh script with body to a temp dir and
// returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	return path
}

// unsignedJWT returns a JWT with the given claims, signed with a key the
// client never sees: the flow must read it without verifying.
func unsignedJWT(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("a key the client does not know"))
	require.NoError(t, err)
	return s
}

func runFlow(t *testing.T, argv []string) (*oauth2.Token, error) {
	t.Helper()
	return runFlowLogged(t, argv, nil)
}

// runFlowLogged runs the command flow alone, with logger in its context
// where a Keeper puts its own (nil: none, as for a flow outside a Keeper).
func runFlowLogged(t *testing.T, argv []string, logger *slog.Logger) (*oauth2.Token, error) {
	t.Helper()
	f, err := authenticator.NewCommandFlow(argv)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if logger != nil {
		ctx = authenticator.ContextWithLogger(ctx, logger)
	}
	return f.Token(ctx, &configstore.ClientConfig{}, nil)
}

// requireKilledAfter checks that the error of a command killed at its
// deadline says how long it ran: most of elapsed, the time the caller
// waited (which also counts starting the command and what came before).
func requireKilledAfter(t *testing.T, err error, elapsed time.Duration) {
	t.Helper()
	m := regexp.MustCompile(`did not finish within (\S+) and was killed`).FindStringSubmatch(err.Error())
	require.NotNil(t, m, "%v", err)
	took, perr := time.ParseDuration(m[1])
	require.NoError(t, perr)
	assert.Greater(t, took, elapsed/2, "%v", err)
	assert.LessOrEqual(t, took, elapsed+time.Millisecond, "%v", err) // rounded to the millisecond
}

func TestCommandFlowToken(t *testing.T) {
	tok, err := runFlow(t, []string{script(t, `printf 'opaque-token.v1\n'`)})
	require.NoError(t, err)
	assert.Equal(t, "opaque-token.v1", tok.AccessToken, "trailing newline trimmed")
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.True(t, tok.Expiry.IsZero(), "an opaque token has no expiry")
}

func TestCommandFlowNoShell(t *testing.T) {
	// The arguments reach the command as they are: no word splitting, no
	// expansion, no command substitution.
	arg := `a b;$(touch pwned) $HOME *`
	path := script(t, `[ "$#" = 1 ] && [ "$1" = 'a b;$(touch pwned) $HOME *' ] && printf verbatim || printf 'wrong-args'`)
	tok, err := runFlow(t, []string{path, arg})
	require.NoError(t, err)
	assert.Equal(t, "verbatim", tok.AccessToken)
	assert.NoFileExists(t, filepath.Join(filepath.Dir(path), "pwned"))
}

func TestCommandFlowLooksUpPath(t *testing.T) {
	path := script(t, `printf from-path`)
	t.Setenv("PATH", filepath.Dir(path)+string(os.PathListSeparator)+os.Getenv("PATH"))
	tok, err := runFlow(t, []string{"token.sh"})
	require.NoError(t, err)
	assert.Equal(t, "from-path", tok.AccessToken)
}

func TestCommandFlowJWTExpiry(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	withExp := unsignedJWT(t, jwt.MapClaims{"sub": "me", "exp": exp.Unix()})
	noExp := unsignedJWT(t, jwt.MapClaims{"sub": "me"})
	for _, tc := range []struct {
		name, token string
		expiry      time.Time
	}{
		{"exp claim", withExp, exp},
		{"no exp claim", noExp, time.Time{}},
		{"three parts, not a JWT", "abc.def.ghi", time.Time{}},
		{"exp not a number", unsignedJWT(t, jwt.MapClaims{"exp": "soon"}), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := runFlow(t, []string{script(t, "printf '%s\\n' '"+tc.token+"'")})
			require.NoError(t, err)
			assert.Equal(t, tc.token, tok.AccessToken)
			assert.True(t, tok.Expiry.Equal(tc.expiry), "expiry %v, want %v", tok.Expiry, tc.expiry)
		})
	}
}

func TestCommandFlowExpiredJWT(t *testing.T) {
	tok := unsignedJWT(t, jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()})
	_, err := runFlow(t, []string{script(t, "printf '%s' '"+tok+"'")})
	var ce *authenticator.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "printed a JWT that expired at")
	assert.NotContains(t, err.Error(), tok)
}

// TestCommandFlowFaults is the fault matrix of the command flow: every row
// fails with a *CommandError that names the command and says why, and never
// carries what the command printed on standard output.
func TestCommandFlowFaults(t *testing.T) {
	const leaked = "SECRET-STDOUT-abc123"
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable.sh")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\nprintf "+leaked+"\n"), 0o600))

	for _, tc := range []struct {
		name   string
		argv   []string
		reason string // in the error text
		is     error  // errors.Is target, if any
		exit   int
		stderr string // in the error text, if set
	}{
		{name: "missing", argv: []string{filepath.Join(dir, "no-such-command")}, reason: "could not be started", is: fs.ErrNotExist, exit: -1},
		{name: "missing from PATH", argv: []string{"grpcauth-no-such-command-xyz"}, reason: "could not be started", is: exec.ErrNotFound, exit: -1},
		{name: "not executable", argv: []string{notExec}, reason: "could not be started", is: fs.ErrPermission, exit: -1},
		{name: "exits 1", argv: []string{script(t, "printf "+leaked+"; echo 'login required: run gcloud auth login' >&2; exit 1")}, reason: "exited with status 1", exit: 1, stderr: "login required: run gcloud auth login"},
		{name: "exits 1 silently", argv: []string{script(t, "exit 1")}, reason: "exited with status 1", exit: 1},
		{name: "killed by a signal", argv: []string{script(t, "printf "+leaked+"; kill -9 $$")}, reason: "was killed by a signal", exit: -1},
		{name: "prints nothing", argv: []string{script(t, "true")}, reason: "printed no token"},
		{name: "prints whitespace", argv: []string{script(t, `printf ' \n\t\n'`)}, reason: "printed no token"},
		{name: "prints garbage", argv: []string{script(t, `printf '`+leaked+` \001\377 more\n'`)}, reason: "is not a token"},
		{name: "prints two lines", argv: []string{script(t, `printf '`+leaked+`\nsecond-line\n'`)}, reason: "is not a token"},
		{name: "prints too much", argv: []string{script(t, `i=0; while [ $i -lt 2000 ]; do printf '`+leaked+strings.Repeat("x", 40)+`'; i=$((i+1)); done`)}, reason: "printed more than 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runFlow(t, tc.argv)
			require.Error(t, err)
			var ce *authenticator.CommandError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.argv[0], ce.Command)
			assert.Equal(t, tc.exit, ce.ExitCode)
			assert.Contains(t, err.Error(), fmt.Sprintf("token command %q", tc.argv[0]))
			assert.Contains(t, err.Error(), tc.reason)
			assert.NotContains(t, err.Error(), leaked)
			assert.NotContains(t, fmt.Sprintf("%+v", err), leaked)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			if tc.stderr != "" {
				assert.Contains(t, err.Error(), tc.stderr)
			}
		})
	}
}

func TestCommandFlowStderrClipped(t *testing.T) {
	_, err := runFlow(t, []string{script(t, `i=0; while [ $i -lt 500 ]; do printf 'line %d \033[31m\n' $i >&2; i=$((i+1)); done; exit 3`)})
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 800)
	assert.NotContains(t, err.Error(), "\033")
	assert.NotContains(t, err.Error(), "\n")
	assert.Contains(t, err.Error(), "exited with status 3; stderr: line 0")
}

// alive reports whether pid is a running process: not gone, not a zombie
// waiting for a parent that is not us.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist) && !strings.Contains(err.Error(), "no such process")
	}
	// The state follows the command name, which is in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// hangingScript starts a child that would outlive the command and hangs;
// it writes the child's pid to the returned file first.
func hangingScript(t *testing.T) (path, pidFile string) {
	t.Helper()
	pidFile = filepath.Join(t.TempDir(), "child.pid")
	return script(t, `sleep 1000 & echo $! > '`+pidFile+`.tmp'; mv '`+pidFile+`.tmp' '`+pidFile+`'; echo started >&2; wait`), pidFile
}

func readPid(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err, "the command ran far enough to start its child")
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

func requireGone(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool { return !alive(pid) }, waitFor, pollAt, "child %d of the killed command still runs", pid)
}

func TestCommandFlowTimeoutKillsProcessGroup(t *testing.T) {
	path, pidFile := hangingScript(t)
	f, err := authenticator.NewCommandFlow([]string{path})
	require.NoError(t, err)
	_, ok := authenticator.FlowTimeout(f)
	assert.False(t, ok, "the command has no timeout of its own: its caller's context (the Keeper's token timeout) bounds it")

	// The deadline passes once the command has started its child, not
	// after a time that a loaded machine might not reach that far in.
	ctx := newDeadlineCtx()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := f.Token(ctx, &configstore.ClientConfig{}, nil)
		done <- err
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(pidFile); return err == nil }, waitFor, pollAt)
	pid := readPid(t, pidFile)
	ctx.expire()
	err = receiveWithin(t, done, "Token to return after its deadline")
	elapsed := time.Since(start)
	var ce *authenticator.CommandError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, -1, ce.ExitCode)
	requireKilledAfter(t, err, elapsed)
	requireGone(t, pid)
}

// deadlineCtx is a context whose deadline passes when the test calls
// expire.
type deadlineCtx struct {
	context.Context // for Value
	done            chan struct{}
	once            sync.Once
}

func newDeadlineCtx() *deadlineCtx {
	return &deadlineCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *deadlineCtx) Done() <-chan struct{} { return c.done }

func (c *deadlineCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *deadlineCtx) expire() { c.once.Do(func() { close(c.done) }) }

func TestCommandFlowCancelKillsProcessGroup(t *testing.T) {
	path, pidFile := hangingScript(t)
	f, err := authenticator.NewCommandFlow([]string{path})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.Token(ctx, &configstore.ClientConfig{}, nil)
		done <- err
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(pidFile); return err == nil }, waitFor, pollAt)
	pid := readPid(t, pidFile)
	cancel()
	select {
	case err = <-done:
	case <-time.After(waitFor):
		t.Fatal("Token did not return after its context was cancelled")
	}
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "was stopped")
	requireGone(t, pid)
}

func TestCommandFlowLeftBehindChild(t *testing.T) {
	// The command prints its token and exits, but leaves a child holding
	// its standard output: the token counts, and the child is killed.
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	path := script(t, `sleep 1000 & echo $! > '`+pidFile+`'; printf left-behind`)
	tok, err := runFlow(t, []string{path})
	require.NoError(t, err)
	assert.Equal(t, "left-behind", tok.AccessToken)
	requireGone(t, readPid(t, pidFile))
}

func TestNewCommandFlow(t *testing.T) {
	for _, argv := range [][]string{nil, {}, {""}, {"  ", "arg"}} {
		f, err := authenticator.NewCommandFlow(argv)
		require.Error(t, err, "%q", argv)
		assert.Nil(t, f)
		assert.Contains(t, err.Error(), "authenticator: the command is empty", "%q", argv)
	}
	argv := []string{"gcloud", "auth", "print-identity-token", "--secret-arg=hunter2"}
	f, err := authenticator.NewCommandFlow(argv)
	require.NoError(t, err)
	argv[0] = "changed-after" // the flow keeps its own copy
	_, ok := authenticator.FlowTimeout(f)
	assert.False(t, ok, "the Keeper's token timeout bounds the command")
	_, ok = authenticator.FlowClientID(f)
	assert.False(t, ok, "a command has no client id")
	for _, s := range []string{fmt.Sprint(f), fmt.Sprintf("%v", f), fmt.Sprintf("%+v", f), fmt.Sprintf("%#v", f), fmt.Sprintf("%s", f), fmt.Sprintf("%d", f)} {
		assert.Contains(t, s, `"gcloud"`)
		assert.NotContains(t, s, "hunter2")
		assert.NotContains(t, s, "changed-after")
	}
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(configstore.ClientConfig{}), f)
	require.NoError(t, err)
	defer k.Close()
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		assert.Contains(t, s, testEndpoint)
		assert.Contains(t, s, `"gcloud"`)
		assert.NotContains(t, s, "hunter2")
	}
}

func TestCommandFlowLogsNoToken(t *testing.T) {
	var logs testserver.LogBuffer
	path := script(t, `printf 'logged-token-xyz'`)
	_, err := runFlowLogged(t, []string{path, "--arg-secret"}, logs.Logger())
	require.NoError(t, err)
	_, err = runFlowLogged(t, []string{script(t, `printf 'logged-token-xyz'; echo oops >&2; exit 2`)}, logs.Logger())
	require.Error(t, err)
	out := logs.String()
	assert.Contains(t, out, "token command succeeded")
	assert.Contains(t, out, `"msg":"authenticator: token command failed","command":`)
	assert.Contains(t, out, `"level":"DEBUG","msg":"authenticator: token command stderr"`)
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, `"level":"DEBUG"`) {
			assert.NotContains(t, line, "oops", "stderr only at debug level")
		}
	}
	assert.NotContains(t, out, "logged-token-xyz")
	assert.NotContains(t, out, "--arg-secret")
}

// tokenCommand is a command whose n-th run prints the file token-n of its
// directory (written by the test beforehand) and counts its runs.
type tokenCommand struct {
	dir  string
	argv []string
}

func newTokenCommand(t *testing.T, tokens ...string) *tokenCommand {
	t.Helper()
	dir := t.TempDir()
	for i, tok := range tokens {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("token-%d", i+1)), []byte(tok+"\n"), 0o600))
	}
	path := filepath.Join(dir, "token.sh")
	body := `#!/bin/sh
dir='` + dir + `'
n=$(cat "$dir/count" 2>/dev/null || echo 0)
n=$((n+1))
echo $n > "$dir/count"
cat "$dir/token-$n"
`
	require.NoError(t, os.WriteFile(path, []byte(body), 0o700))
	return &tokenCommand{dir: dir, argv: []string{path}}
}

func (c *tokenCommand) runs(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "count"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return n
}

// jwts returns n JWTs, the k-th (from 1) expiring k hours from now.
func jwts(t *testing.T, n int) []string {
	t.Helper()
	now := time.Now()
	out := make([]string, n)
	for i := range out {
		out[i] = unsignedJWT(t, jwt.MapClaims{"sub": "me", "n": i + 1, "exp": now.Add(time.Duration(i+1) * time.Hour).Unix()})
	}
	return out
}

// newCommandAuth is a Keeper whose tokens come from running argv, for the
// service at testEndpoint, as grpcauth.New builds one for Flyte's
// ExternalCommand and proxyCommand.
func newCommandAuth(argv []string, store configstore.ClientConfigStore, opts ...authenticator.Option) (*authenticator.Keeper, error) {
	flow, err := authenticator.NewCommandFlow(argv)
	if err != nil {
		return nil, err
	}
	return authenticator.New(testEndpoint, store, flow, opts...)
}

func newCommandKeeper(t *testing.T, cmd *tokenCommand, opts ...authenticator.Option) *authenticator.Keeper {
	t.Helper()
	k, err := newCommandAuth(cmd.argv, configstore.NewStatic(configstore.ClientConfig{}), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// together runs f in n goroutines released at once, and waits for them.
func together(n int, f func()) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}

func TestCommandKeeperTokenUsed(t *testing.T) {
	toks := jwts(t, 1)
	cmd := newTokenCommand(t, toks...)
	k := newCommandKeeper(t, cmd)
	var values sync.Map
	together(200, func() {
		key, value, ok := credOK(k.Credential(t.Context()))
		if ok {
			values.Store(key+": "+value, true)
		}
	})
	n := 0
	values.Range(func(k, _ any) bool { n++; assert.Equal(t, "authorization: Bearer "+toks[0], k); return true })
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, cmd.runs(t), "200 first callers, one run")
	tok, err := k.Token(t.Context())
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Add(time.Hour).Unix(), tok.Expiry.Unix(), 5, "the JWT's exp is the expiry")
	assert.Equal(t, int64(1), k.Stats().TokenRequests)
}

func TestCommandKeeperRerunsAfterRejection(t *testing.T) {
	toks := jwts(t, 3)
	cmd := newTokenCommand(t, toks...)
	k := newCommandKeeper(t, cmd)
	_, v1, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	k.Accepted(v1)
	together(200, func() { assert.NoError(t, k.Rejected(t.Context(), v1)) })
	assert.Equal(t, 2, cmd.runs(t), "200 callers saw the token rejected, one run")
	_, v2, _ := credOK(k.Credential(t.Context()))
	assert.Equal(t, "Bearer "+toks[1], v2)
	// A late rejection of the replaced token costs nothing.
	require.NoError(t, k.Rejected(t.Context(), v1))
	assert.Equal(t, 2, cmd.runs(t))
}

func TestCommandKeeperRerunsAtExpiry(t *testing.T) {
	toks := jwts(t, 3)
	cmd := newTokenCommand(t, toks...)
	clock := testserver.NewClock(time.Now())
	k := newCommandKeeper(t, cmd, authenticator.WithClock(clock.Now))
	_, v1, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)

	// Past the JWT's exp: every caller waits for the one new run.
	clock.Advance(time.Hour + time.Second)
	together(200, func() {
		_, v, ok := credOK(k.Credential(t.Context()))
		assert.True(t, ok)
		assert.Equal(t, "Bearer "+toks[1], v)
	})
	assert.NotEqual(t, "Bearer "+toks[1], v1)
	assert.Equal(t, 2, cmd.runs(t), "200 callers after expiry, one run")
	assert.Equal(t, int64(1), k.Stats().Expired)

	// Within the refresh margin of the second token (exp in 2h from the
	// start): callers go on with it while one background run replaces it.
	clock.Advance(time.Hour - 5*time.Second)
	together(200, func() {
		_, v, ok := credOK(k.Credential(t.Context()))
		assert.True(t, ok)
		assert.Contains(t, []string{"Bearer " + toks[1], "Bearer " + toks[2]}, v)
	})
	require.Eventually(t, func() bool {
		_, v, _ := credOK(k.Credential(t.Context()))
		return v == "Bearer "+toks[2]
	}, waitFor, pollAt)
	assert.Equal(t, 3, cmd.runs(t), "one proactive run")
	assert.Equal(t, int64(1), k.Stats().Proactive)
}

func TestCommandKeeperOpaqueTokenNeverExpires(t *testing.T) {
	cmd := newTokenCommand(t, "opaque-1", "opaque-2")
	clock := testserver.NewClock(time.Now())
	k := newCommandKeeper(t, cmd, authenticator.WithClock(clock.Now))
	_, v, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	assert.Equal(t, "Bearer opaque-1", v)
	clock.Advance(100 * 24 * time.Hour)
	_, v, _ = credOK(k.Credential(t.Context()))
	assert.Equal(t, "Bearer opaque-1", v, "used until rejected")
	assert.Equal(t, 1, cmd.runs(t))
}

func TestCommandKeeperFailureIsTyped(t *testing.T) {
	k, err := newCommandAuth([]string{script(t, "printf leaked-out; echo 'not logged in' >&2; exit 4")},
		configstore.NewStatic(configstore.ClientConfig{}), authenticator.WithHeaderKey("proxy-authorization"), authenticator.WithTokenTimeout(5*time.Second))
	require.NoError(t, err)
	defer k.Close()
	err = k.RefreshCredentials(t.Context())
	var ce *authenticator.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 4, ce.ExitCode)
	assert.Contains(t, err.Error(), "not logged in")
	assert.NotContains(t, err.Error(), "leaked-out")
	assert.Equal(t, 1, strings.Count(err.Error(), "authenticator: "), "prefixed once: %v", err)
	assert.Contains(t, fmt.Sprint(k), testEndpoint)

	_, err = newCommandAuth(nil, configstore.NewStatic(configstore.ClientConfig{}))
	assert.ErrorContains(t, err, "the command is empty")
}

func TestCommandKeeperTimeoutFromOptions(t *testing.T) {
	path, pidFile := hangingScript(t)
	k, err := newCommandAuth([]string{path}, configstore.NewStatic(configstore.ClientConfig{}), authenticator.WithTokenTimeout(500*time.Millisecond))
	require.NoError(t, err)
	defer k.Close()
	start := time.Now()
	err = k.RefreshCredentials(t.Context())
	elapsed := time.Since(start)
	var ce *authenticator.CommandError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, elapsed, 500*time.Millisecond, "the token timeout bounds the command")
	assert.Less(t, elapsed, authenticator.DefaultTokenTimeout/2, "the token timeout, not the default")
	requireKilledAfter(t, err, elapsed)
	// On a loaded machine the command may be killed before it started its
	// child; TestCommandFlowTimeoutKillsProcessGroup checks the group kill
	// without that race.
	if _, err := os.Stat(pidFile); err == nil {
		requireGone(t, readPid(t, pidFile))
	}
}

// TestCommandKeeperLogsWithItsLogger: the command flow logs with the
// Keeper's logger (WithLogger), without the token or the arguments.
func TestCommandKeeperLogsWithItsLogger(t *testing.T) {
	var logs testserver.LogBuffer
	cmd := newTokenCommand(t, "keeper-logged-token")
	cmd.argv = append(cmd.argv, "--arg-secret")
	k := newCommandKeeper(t, cmd, authenticator.WithLogger(logs.Logger()))
	require.NoError(t, k.RefreshCredentials(t.Context()))
	out := logs.String()
	assert.Contains(t, out, "token command succeeded")
	assert.NotContains(t, out, "keeper-logged-token")
	assert.NotContains(t, out, "--arg-secret")
}
