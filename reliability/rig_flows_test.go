package reliability_test

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/tokencache"
)

// The parts of a rig for the flows beyond client credentials: a device
// login, an identity-aware proxy in front of FlyteAdmin (proxyCommand),
// and a file token cache.

// deviceLoginTimeout bounds a device login of the rig: a hung device
// endpoint costs this much per login.
const deviceLoginTimeout = 2 * time.Second

// withDevice starts the device server whose tokens the admin server also
// accepts.
func (r *rig) withDevice(t testing.TB) {
	t.Helper()
	d, err := testserver.NewDeviceServer(testserver.WithDeviceClient(clientID), testserver.WithDeviceInterval(0))
	require.NoError(t, err)
	r.onClose(d.Close)
	r.device, r.deviceURL = d, d.DeviceAuthorizationURL()
	r.valid.device = d
}

// deviceFlow is a device login whose person approves each code at once.
func (r *rig) deviceFlow(t testing.TB) authenticator.Flow {
	t.Helper()
	f, err := authenticator.NewDeviceFlow(authenticator.DeviceConfig{
		ClientID:     clientID,
		Timeout:      deviceLoginTimeout,
		PollInterval: 10 * time.Millisecond,
		Prompter:     approver{r.device},
	})
	require.NoError(t, err)
	return f
}

// approver is a person who approves every device code they are shown.
type approver struct{ d *testserver.DeviceServer }

func (a approver) DeviceCode(_ context.Context, d *oauth2.DeviceAuthResponse) {
	_ = a.d.Approve(d.UserCode)
}
func (approver) Browse(context.Context, string) {}
func (approver) Relogin(context.Context)        {}
func (approver) LoggedIn(context.Context)       {}
func (approver) CallbackPage(io.Writer, error)  {}

// withCache returns the option of a file token cache in a directory of
// the rig's own; notePath notes the path of the Keeper's entry once the
// rig is built.
func (r *rig) withCache(t testing.TB) authenticator.Option {
	t.Helper()
	c, err := tokencache.NewFile(tokencache.WithDir(t.TempDir()), tokencache.WithLogger(r.logs.logger()))
	require.NoError(t, err)
	r.cache = c
	return authenticator.WithCache(c)
}

// noteCachePath notes the path of the Keeper's cache entry (asking
// AuthMetadataService for what its key holds).
func (r *rig) noteCachePath(t testing.TB) {
	t.Helper()
	key, err := r.auth.CacheKey(t.Context())
	require.NoError(t, err)
	r.cachePath = r.cache.Path(key)
}

// withProxyCommand puts the admin server behind an identity-aware proxy
// and starts the Keeper of its credential (the proxyCommand's place: each
// run hands out the next of the tokens the proxy allows). It returns the
// address to dial.
func (r *rig) withProxyCommand(t testing.TB) string {
	t.Helper()
	px, err := testserver.NewProxy()
	require.NoError(t, err)
	r.onClose(px.Close)
	for i := 1; i <= 20; i++ {
		px.Allow(proxyToken(i))
	}
	front, err := px.FrontGRPC(r.admin.Addr())
	require.NoError(t, err)
	r.px = px
	r.pxAuth, err = authenticator.New(front, configstore.NewStatic(configstore.ClientConfig{}), new(proxyRuns),
		authenticator.WithHeaderKey("proxy-authorization"), authenticator.WithLogger(r.logs.logger()))
	require.NoError(t, err)
	r.onClose(func() { _ = r.pxAuth.Close() })
	return front
}

func proxyToken(n int) string { return fmt.Sprintf("proxy-token-%d", n) }

// proxyRuns is the proxy credential's flow: run n gives proxyToken(n).
type proxyRuns struct{ n atomic.Int32 }

func (p *proxyRuns) Token(context.Context, *configstore.ClientConfig, *oauth2.Token) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: proxyToken(int(p.n.Add(1)))}, nil
}
