// Package cachechild runs the child processes of the tests in which several
// processes of one user share a browser login through the token cache
// (authenticator's, against the rotating fake; interop's, against Hydra):
// each child is the test binary itself, started with Env set, whose
// TestMain calls Main.
package cachechild

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

// Env, when set, makes the test binary a child: its value is the Spec.
const Env = "GRPCAUTH_TEST_CACHE_CHILD"

// exitSentToLogin is a child's exit status when it was sent to a login.
const exitSentToLogin = 3

// Spec says what a child does: with a browser login's Keeper for Endpoint
// on the cache in Dir, ask for a new token Cycles times.
type Spec struct {
	Endpoint string
	Dir      string
	Config   configstore.ClientConfig
	Cycles   int
	Deadline time.Time
}

// Result is what a child reports: its last access token, and the token
// requests it made and the tokens it took from the cache.
type Result struct {
	Token               string
	Requests, CacheHits int
}

// Main is a child's whole run; TestMain exits with what it returns.
func Main(spec string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	var s Spec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), s.Deadline)
	defer cancel()
	cache, err := tokencache.NewFile(tokencache.WithDir(s.Dir))
	if err != nil {
		return fail(err)
	}
	flow, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{RedirectURI: s.Config.RedirectURI, Timeout: time.Second, Prompter: noPerson{}})
	if err != nil {
		return fail(err)
	}
	k, err := authenticator.New(s.Endpoint, configstore.NewStatic(s.Config), flow, authenticator.WithCache(cache))
	if err != nil {
		return fail(err)
	}
	defer k.Close()
	for i := range s.Cycles {
		if err := k.RefreshCredentials(ctx); err != nil {
			return fail(fmt.Errorf("cycle %d: %w", i, err))
		}
	}
	tok, err := k.Token(ctx)
	if err != nil {
		return fail(err)
	}
	out, err := json.Marshal(Result{Token: tok.AccessToken, Requests: int(k.Stats().TokenRequests), CacheHits: int(k.Stats().CacheHits)})
	if err != nil {
		return fail(err)
	}
	fmt.Printf("%s\n", out)
	return 0
}

// noPerson is a child's prompter: being asked to log in ends the process
// with exitSentToLogin.
type noPerson struct{}

func (noPerson) Browse(context.Context, string) {
	fmt.Fprintln(os.Stderr, "child: sent to a login")
	os.Exit(exitSentToLogin)
}
func (noPerson) DeviceCode(context.Context, *oauth2.DeviceAuthResponse) { os.Exit(exitSentToLogin) }
func (noPerson) Relogin(context.Context)                                {}
func (noPerson) LoggedIn(context.Context)                               {}
func (noPerson) CallbackPage(io.Writer, error)                          {}

// Run starts n children of the test binary at once with s and returns
// what each reported; a child that failed, or was sent to a login, fails
// the test.
func Run(t testing.TB, n int, s Spec) []Result {
	t.Helper()
	spec, err := json.Marshal(s)
	require.NoError(t, err)
	type ran struct {
		err            error
		stdout, stderr bytes.Buffer
	}
	runs := make([]ran, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), Env+"="+string(spec))
			cmd.Stdout, cmd.Stderr = &runs[i].stdout, &runs[i].stderr
			runs[i].err = cmd.Run()
		})
	}
	wg.Wait()
	results := make([]Result, n)
	for i, r := range runs {
		require.NoError(t, r.err, "process %d (exit status %d is a login): %s", i, exitSentToLogin, r.stderr.String())
		require.NoError(t, json.Unmarshal(r.stdout.Bytes(), &results[i]), "process %d printed: %s", i, r.stdout.String())
	}
	return results
}
