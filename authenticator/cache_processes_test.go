package authenticator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/cachechild"
)

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

			results := cachechild.Run(t, n, cachechild.Spec{Endpoint: testEndpoint, Dir: dir, Config: *fx.cfg, Cycles: cycles, Deadline: time.Now().Add(time.Minute)})
			var requests, hits int
			for i, r := range results {
				_, err := fx.as.Validate(t.Context(), r.Token)
				assert.NoError(t, err, "process %d holds a valid token at the end", i)
				requests, hits = requests+r.Requests, hits+r.CacheHits
			}
			assert.EqualValues(t, 1, fx.as.Authorizations(), "nobody was sent back to a login")
			assert.Zero(t, fx.as.RefreshReuses(), "no refresh token was redeemed twice")
			assert.EqualValues(t, requests, fx.as.RefreshGrants(), "every refresh the processes made was granted")
			t.Logf("%d processes × %d new tokens: %d refresh grants, %d tokens taken from the cache, 0 logins, 0 reuses",
				n, cycles, fx.as.RefreshGrants(), hits)
		})
	}
}
