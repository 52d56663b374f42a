package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/tokencache"
)

// processChildEnv, when set, makes the test binary one of the processes
// of sharedLoginProcesses (TestMain runs it before starting Hydra).
const processChildEnv = "GRPCAUTH_INTEROP_PROCESS_CHILD"

// processChild says what a child process does: with a browser login's
// Keeper on the shared cache, ask for a new token Cycles times.
type processChild struct {
	Endpoint string
	Dir      string
	Config   configstore.ClientConfig
	Cycles   int
	Deadline time.Time
}

// exitSentToLogin is a child's exit code when it was sent to a login.
const exitSentToLogin = 3

// runProcessChild is a child process: it prints its last access token
// and how many token requests it made.
func runProcessChild(spec string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	var c processChild
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), c.Deadline)
	defer cancel()
	cache, err := tokencache.NewFile(tokencache.WithDir(c.Dir))
	if err != nil {
		return fail(err)
	}
	flow, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{RedirectURI: c.Config.RedirectURI, Timeout: time.Second, Prompter: sentToLogin{}})
	if err != nil {
		return fail(err)
	}
	k, err := authenticator.New(c.Endpoint, configstore.NewStatic(c.Config), flow, authenticator.WithCache(cache))
	if err != nil {
		return fail(err)
	}
	defer k.Close()
	for i := range c.Cycles {
		if err := k.RefreshCredentials(ctx); err != nil {
			return fail(fmt.Errorf("cycle %d: %w", i, err))
		}
	}
	tok, err := k.Token(ctx)
	if err != nil {
		return fail(err)
	}
	fmt.Printf("TOKEN %s\nREQUESTS %d\n", tok.AccessToken, k.Stats().TokenRequests)
	return 0
}

// sentToLogin is a child's prompter: being asked to log in ends the
// process with exitSentToLogin.
type sentToLogin struct{}

func (sentToLogin) Browse(context.Context, string) {
	fmt.Fprintln(os.Stderr, "child: sent to a login")
	os.Exit(exitSentToLogin)
}
func (sentToLogin) DeviceCode(context.Context, *oauth2.DeviceAuthResponse) { os.Exit(exitSentToLogin) }
func (sentToLogin) Relogin(context.Context)                                {}
func (sentToLogin) LoggedIn(context.Context)                               {}
func (sentToLogin) CallbackPage(io.Writer, error)                          {}

// sharedLoginProcesses runs n child processes on the login kept in dir,
// each asking Hydra for a new token cycles times through the shared
// cache, all at once. Hydra rotates refresh tokens and revokes the whole
// login when one is used twice: so no child may be sent to a login. (A
// refresh also revokes the access token the refresh token came with, so
// only the newest token is active at the end.) It returns the token
// requests the children made.
func sharedLoginProcesses(t *testing.T, n, cycles int, endpoint, dir string, cfg *configstore.ClientConfig) int {
	t.Helper()
	spec, err := json.Marshal(processChild{Endpoint: endpoint, Dir: dir, Config: *cfg, Cycles: cycles, Deadline: time.Now().Add(2 * time.Minute)})
	require.NoError(t, err)
	type result struct {
		err            error
		stdout, stderr string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), processChildEnv+"="+string(spec))
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			results[i] = result{cmd.Run(), out.String(), errOut.String()}
		})
	}
	wg.Wait()
	requests := 0
	for i, r := range results {
		require.NoError(t, r.err, "process %d (exit %d is a login): %s", i, exitSentToLogin, r.stderr)
		var tok string
		var req int
		_, err := fmt.Sscanf(r.stdout, "TOKEN %s\nREQUESTS %d", &tok, &req)
		require.NoError(t, err, "process %d printed: %s", i, r.stdout)
		requests += req
	}
	return requests
}
