package interop

import (
	"testing"
	"time"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/cachechild"
)

// sharedLoginProcesses runs n child processes on the login kept in dir,
// each asking Hydra for a new token cycles times through the shared
// cache, all at once. Hydra rotates refresh tokens and revokes the whole
// login when one is used twice: so no child may be sent to a login. (A
// refresh also revokes the access token the refresh token came with, so
// only the newest token is active at the end.) It returns the token
// requests the children made.
func sharedLoginProcesses(t *testing.T, n, cycles int, endpoint, dir string, cfg *configstore.ClientConfig) int {
	t.Helper()
	requests := 0
	for _, r := range cachechild.Run(t, n, cachechild.Spec{Endpoint: endpoint, Dir: dir, Config: *cfg, Cycles: cycles, Deadline: time.Now().Add(2 * time.Minute)}) {
		requests += r.Requests
	}
	return requests
}
