package authenticator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/tokencache"
)

// cacheChildEnv, when set, makes the test binary a process of
// TestProcessesSharingOneCache instead of running the tests.
const cacheChildEnv = "GRPCAUTH_TEST_CACHE_CHILD"

// cacheChild says what a child process does: with a browser login's
// Keeper on the shared cache, ask for a new token Cycles times.
type cacheChild struct {
	Dir      string
	Config   configstore.ClientConfig
	Cycles   int
	Deadline time.Time
}

// exitLoginAsked is a child's exit code when it was sent to a login.
const exitLoginAsked = 3

func runCacheChild(spec string) int {
	var c cacheChild
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	ctx, cancel := context.WithDeadline(context.Background(), c.Deadline)
	defer cancel()
	cache, err := tokencache.NewFile(tokencache.WithDir(c.Dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	flow, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{Timeout: time.Second, Prompter: noPerson{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(c.Config), flow, authenticator.WithCache(cache))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer k.Close()
	for i := range c.Cycles {
		if err := k.RefreshCredentials(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "child: cycle %d: %v\n", i, err)
			return 1
		}
	}
	tok, err := k.Token(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	st := k.Stats()
	fmt.Printf("TOKEN %s\nSTATS requests=%d cachehits=%d\n", tok.AccessToken, st.TokenRequests, st.CacheHits)
	return 0
}

// noPerson is the prompter of a child: being asked to log in ends the
// process with exitLoginAsked.
type noPerson struct{}

func (noPerson) Browse(context.Context, string) {
	fmt.Fprintln(os.Stderr, "child: sent to a login")
	os.Exit(exitLoginAsked)
}
func (noPerson) DeviceCode(context.Context, *oauth2.DeviceAuthResponse) { os.Exit(exitLoginAsked) }
func (noPerson) Relogin(context.Context)                                {}
func (noPerson) LoggedIn(context.Context)                               {}
func (noPerson) CallbackPage(io.Writer, error)                          {}

// TestProcessesSharingOneCache: two, then three processes of one user
// share one login through the cache, against a server that rotates
// refresh tokens and revokes the whole login when one is used twice. Each
// asks for a new token again and again; nobody is sent back to a login,
// and nothing is revoked.
func TestProcessesSharingOneCache(t *testing.T) {
	const cycles = 15
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d processes", n), func(t *testing.T) {
			fx := newPKCEFixture(t)
			dir := t.TempDir()
			k := newPKCEKeeper(t, fx, newFileCache(t, dir))
			_, err := k.Token(t.Context())
			require.NoError(t, err)
			fx.lastPage(t)
			require.NoError(t, k.Close())

			spec, err := json.Marshal(cacheChild{Dir: dir, Config: *fx.cfg, Cycles: cycles, Deadline: time.Now().Add(time.Minute)})
			require.NoError(t, err)
			type result struct {
				err            error
				stdout, stderr string
			}
			results := make([]result, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					cmd := exec.Command(os.Args[0], "-test.run=^$")
					cmd.Env = append(os.Environ(), cacheChildEnv+"="+string(spec))
					var out, errOut bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &errOut
					results[i] = result{cmd.Run(), out.String(), errOut.String()}
				})
			}
			wg.Wait()

			var requests, hits int
			for i, r := range results {
				require.NoError(t, r.err, "process %d: %s", i, r.stderr)
				tok, ok := strings.CutPrefix(strings.SplitN(r.stdout, "\n", 2)[0], "TOKEN ")
				require.True(t, ok, "process %d printed: %s", i, r.stdout)
				_, err := fx.as.Validate(t.Context(), tok)
				assert.NoError(t, err, "process %d holds a valid token at the end", i)
				var req, hit int
				_, err = fmt.Sscanf(strings.SplitN(r.stdout, "\n", 3)[1], "STATS requests=%d cachehits=%d", &req, &hit)
				require.NoError(t, err)
				requests, hits = requests+req, hits+hit
			}
			assert.EqualValues(t, 1, fx.as.Authorizations(), "nobody was sent back to a login")
			assert.Zero(t, fx.as.RefreshReuses(), "no refresh token was redeemed twice")
			assert.EqualValues(t, requests, fx.as.RefreshGrants(), "every refresh the processes made was granted")
			t.Logf("%d processes × %d new tokens: %d refresh grants, %d tokens taken from the cache, 0 logins, 0 reuses",
				n, cycles, fx.as.RefreshGrants(), hits)
		})
	}
}
