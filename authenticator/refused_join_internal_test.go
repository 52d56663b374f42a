package authenticator

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

type silentPrompter struct{}

func (silentPrompter) Browse(context.Context, string)                         {}
func (silentPrompter) DeviceCode(context.Context, *oauth2.DeviceAuthResponse) {}
func (silentPrompter) Relogin(context.Context)                                {}
func (silentPrompter) LoggedIn(context.Context)                               {}
func (silentPrompter) CallbackPage(io.Writer, error)                          {}

// refusedRefreshFlow: a login flow whose saved refresh token the server
// refuses (HTTP 400 invalid_grant), as one past its lifetime is; a
// background refresh waits for release first.
type refusedRefreshFlow struct {
	logins            atomic.Int32
	background        chan struct{}
	release           chan struct{}
	backgroundStarted sync.Once
}

func (f *refusedRefreshFlow) Token(ctx context.Context, _ *configstore.ClientConfig, _ *oauth2.Token) (*oauth2.Token, error) {
	if ctx.Value(backgroundKey{}) == causeProactive {
		f.backgroundStarted.Do(func() { close(f.background) })
		<-f.release
	}
	var why error
	if inBackground(ctx) && f.logins.Load() > 0 {
		why = &TokenError{TokenURL: "https://idp.example/token", StatusCode: 400, ErrorCode: "invalid_grant"}
	}
	return loginOrWait(ctx, why, silentPrompter{}, func() (*oauth2.Token, error) {
		n := f.logins.Add(1)
		return &oauth2.Token{AccessToken: fmt.Sprintf("login-%d", n), ExpiresIn: 60}, nil
	})
}

func (f *refusedRefreshFlow) flowTimeout() time.Duration { return time.Minute }

// TestACallThatJoinsARefusedBackgroundRefreshLogsIn: as
// TestACallAfterExpiryThatJoinsABackgroundRefreshLogsIn, but the
// background refresh ended because the refresh token was refused (a 4xx):
// the refusal pause then stops the caller's own flight, and the call goes
// out with the expired token instead of logging in.
func TestACallThatJoinsARefusedBackgroundRefreshLogsIn(t *testing.T) {
	clk := testserver.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	f := &refusedRefreshFlow{background: make(chan struct{}), release: make(chan struct{})}
	store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: "https://idp.example/token"})
	k, err := New("endpoint", store, f, WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	_, first, ok := credOK(k.Credential(context.Background()))
	require.True(t, ok)
	require.Equal(t, "Bearer login-1", first)

	clk.Advance(55 * time.Second) // in the refresh margin
	_, _, ok = credOK(k.Credential(context.Background()))
	require.True(t, ok)
	within(t, f.background, "the background refresh")

	clk.Advance(10 * time.Second) // expired
	ctx := newJoinedCtx()
	type result struct {
		value string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		_, v, err := k.Credential(ctx)
		done <- result{v, err}
	}()
	within(t, ctx.joined, "the caller joining the background refresh")
	close(f.release)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not return")
	}
	require.NoError(t, r.err)
	assert.Equal(t, "Bearer login-2", r.value, "the call logged in")
}
