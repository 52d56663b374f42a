package authenticator_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
)

const deviceClientID = "flytectl"

// deviceWorld is one device test's server, clock, prompt and flow.
type deviceWorld struct {
	srv    *testserver.DeviceServer
	clock  *testserver.Clock
	prompt *promptBuffer
	conf   authenticator.DeviceConfig // what flow was built from
	flow   authenticator.Flow
	cfg    *configstore.ClientConfig

	mu    sync.Mutex // guards waits and act
	waits []time.Duration
	// act runs inside each pause between polls, before the poll that
	// follows it; n counts the pauses from 1. It is where a test plays the
	// person: approve, deny.
	act func(n int)
}

// newDeviceWorld starts a DeviceServer on a hand-moved clock and a flow
// whose pauses between polls move that clock instead of waiting, so every
// interval the flow picks is seen exactly and costs no time. The flow shows
// the person its prompts on a loginui.Terminal writing to w.prompt; each of
// configure may change the DeviceConfig before the flow is built.
func newDeviceWorld(t *testing.T, srvOpts []testserver.DeviceOption, configure ...func(*authenticator.DeviceConfig)) *deviceWorld {
	t.Helper()
	// The clock starts now, not at newFakeClock's fixed date: x/oauth2
	// stamps a token's Expiry by the real clock, and the Keeper compares it
	// with this one.
	w := &deviceWorld{clock: testserver.NewClock(time.Now()), prompt: new(promptBuffer)}
	srv, err := testserver.NewDeviceServer(append([]testserver.DeviceOption{
		testserver.WithDeviceClient(deviceClientID),
		testserver.WithDeviceClock(w.clock.Now),
	}, srvOpts...)...)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	w.srv = srv
	w.conf = authenticator.DeviceConfig{Prompter: &loginui.Terminal{Out: w.prompt}}
	for _, c := range configure {
		c(&w.conf)
	}
	w.flow, err = authenticator.NewDeviceFlow(w.conf)
	require.NoError(t, err)
	authenticator.SetDeviceWait(w.flow, func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		w.mu.Lock()
		w.waits = append(w.waits, d)
		n, act := len(w.waits), w.act
		w.mu.Unlock()
		w.clock.Advance(d)
		if act != nil {
			act(n)
		}
		return nil
	})
	w.cfg = &configstore.ClientConfig{
		TokenEndpoint:               srv.TokenURL(),
		DeviceAuthorizationEndpoint: srv.DeviceAuthorizationURL(),
		ClientID:                    deviceClientID,
		Scopes:                      []string{"offline", "all"},
		Audience:                    "flyteadmin",
	}
	return w
}

// withPollInterval sets DeviceConfig.PollInterval.
func withPollInterval(d time.Duration) func(*authenticator.DeviceConfig) {
	return func(c *authenticator.DeviceConfig) { c.PollInterval = d }
}

// withDeviceTimeout sets DeviceConfig.Timeout.
func withDeviceTimeout(d time.Duration) func(*authenticator.DeviceConfig) {
	return func(c *authenticator.DeviceConfig) { c.Timeout = d }
}

// onPause sets what the person does in the pauses between polls.
func (w *deviceWorld) onPause(act func(n int)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.act = act
}

func (w *deviceWorld) Waits() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.waits...)
}

// approveAt approves the only user code in pause n.
func (w *deviceWorld) approveAt(t *testing.T, n int) {
	w.onPause(func(i int) {
		if i == n {
			assert.NoError(t, w.srv.Approve(w.onlyUserCode(t)))
		}
	})
}

func (w *deviceWorld) onlyUserCode(t *testing.T) string {
	codes := w.srv.UserCodes()
	if !assert.NotEmpty(t, codes) {
		return ""
	}
	return codes[len(codes)-1]
}

// token runs the flow with the server's HTTP client in ctx, as the Keeper
// does.
func (w *deviceWorld) token(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, w.srv.HTTPClient())
	return w.flow.Token(ctx, w.cfg.Clone(), prev)
}

func answers(polls []testserver.DevicePoll) []string {
	out := make([]string, len(polls))
	for i, p := range polls {
		out[i] = p.Answer
	}
	return out
}

// gaps are the times between the device authorization (at the clock's
// start) and each poll, and between polls, by the server's clock.
func gaps(start time.Time, polls []testserver.DevicePoll) []time.Duration {
	out := make([]time.Duration, len(polls))
	prev := start
	for i, p := range polls {
		out[i] = p.At.Sub(prev)
		prev = p.At
	}
	return out
}

// promptBuffer is a bytes.Buffer safe for concurrent use that can tell when
// something was first written.
type promptBuffer struct {
	mu      sync.Mutex // guards b and written
	b       bytes.Buffer
	written chan struct{}
}

func (s *promptBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil && s.b.Len() == 0 && len(p) > 0 {
		close(s.written)
	}
	return s.b.Write(p)
}

func (s *promptBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Written returns a channel closed at the first write.
func (s *promptBuffer) Written() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(chan struct{})
		if s.b.Len() > 0 {
			close(s.written)
		}
	}
	return s.written
}

func TestDeviceCodePendingThenToken(t *testing.T) {
	w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(2 * time.Second)})
	start := w.clock.Now()
	w.approveAt(t, 4) // three polls see authorization_pending

	tok, err := w.token(t.Context(), nil)
	require.NoError(t, err)

	polls := w.srv.Polls()
	assert.Equal(t, []string{"authorization_pending", "authorization_pending", "authorization_pending", "token"}, answers(polls))
	assert.Equal(t, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second}, gaps(start, polls),
		"the flow polls at the announced interval, not sooner")
	info, err := w.srv.Validate(t.Context(), tok.AccessToken)
	require.NoError(t, err, "the token is one the server issued")
	assert.Equal(t, deviceClientID, info.ClientID)
	assert.Equal(t, []string{"offline", "all"}, info.Scopes)
	assert.Equal(t, "flyteadmin", info.Audience, "the audience goes with the device authorization request")
	assert.NotEmpty(t, tok.RefreshToken)
	assert.False(t, tok.Expiry.IsZero())

	req := w.srv.LastAuthorizationRequest()
	assert.Equal(t, deviceClientID, req.Form.Get("client_id"))
	assert.Equal(t, "offline all", req.Form.Get("scope"))
	assert.Empty(t, req.BasicAuthHeader, "a public client sends no credentials")
	assert.False(t, req.Form.Has("client_secret"))

	code := w.onlyUserCode(t)
	out := w.prompt.String()
	assert.Contains(t, out, w.srv.VerificationURL()+"?user_code="+code)
	assert.Contains(t, out, "\n    "+code+"\n", "the code stands on a line of its own")
	assert.Contains(t, out, "Logged in.")
	assert.NotContains(t, out, "█", "no QR code on a writer that is not a terminal")
	assert.NotContains(t, out, tok.AccessToken)
	assert.NotContains(t, out, tok.RefreshToken)
}

func TestDeviceCodeSlowDownRaisesInterval(t *testing.T) {
	w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)})
	start := w.clock.Now()
	w.srv.SlowDown(2)
	w.approveAt(t, 1) // approved at once: only slow_down delays the token

	_, err := w.token(t.Context(), nil)
	require.NoError(t, err)

	polls := w.srv.Polls()
	assert.Equal(t, []string{"slow_down", "slow_down", "token"}, answers(polls))
	assert.Equal(t, []time.Duration{time.Second, 6 * time.Second, 11 * time.Second}, gaps(start, polls),
		"each slow_down adds 5 s for this and every later poll (RFC 8628 §3.5)")
}

func TestDeviceCodeDefaultInterval(t *testing.T) {
	t.Run("server omits interval", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(0)})
		w.approveAt(t, 2)
		_, err := w.token(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{5 * time.Second, 5 * time.Second}, w.Waits(), "RFC 8628 §3.2: 5 s without an interval")
	})
	t.Run("pollInterval option", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(0)},
			withPollInterval(1500*time.Millisecond))
		w.approveAt(t, 2)
		_, err := w.token(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}, w.Waits())
	})
	t.Run("the server's interval wins", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(3 * time.Second)},
			withPollInterval(time.Second))
		w.approveAt(t, 1)
		_, err := w.token(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{3 * time.Second}, w.Waits())
	})
}

func TestDeviceCodeAccessDenied(t *testing.T) {
	w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)})
	w.onPause(func(n int) {
		if n == 2 {
			assert.NoError(t, w.srv.Deny(w.onlyUserCode(t)))
		}
	})
	tok, err := w.token(t.Context(), nil)
	require.Error(t, err)
	assert.Nil(t, tok)
	requireAuthorizationError(t, err, "access_denied")
	assert.Equal(t, []string{"authorization_pending", "access_denied"}, answers(w.srv.Polls()), "no poll after the denial")
	assert.NotContains(t, w.prompt.String(), "Logged in")
}

// requireAuthorizationError checks that err is the server's refusal of
// the login, with code.
func requireAuthorizationError(t *testing.T, err error, code string) {
	t.Helper()
	var ae *authenticator.AuthorizationError
	require.ErrorAs(t, err, &ae, "%v", err)
	assert.Equal(t, code, ae.ErrorCode)
	assert.Contains(t, err.Error(), code)
	var te *authenticator.TokenError
	assert.False(t, errors.As(err, &te), "a refusal is not a failed token request: %v", err)
}

func TestDeviceCodeExpiredToken(t *testing.T) {
	w := newDeviceWorld(t, []testserver.DeviceOption{
		testserver.WithDeviceInterval(5 * time.Second),
		testserver.WithDeviceCodeLifetime(12 * time.Second),
	})
	_, err := w.token(t.Context(), nil)
	require.Error(t, err)
	requireAuthorizationError(t, err, "expired_token")
	assert.Equal(t, []string{"authorization_pending", "authorization_pending", "expired_token"}, answers(w.srv.Polls()))
}

func TestDeviceCodeExpiresWhileWaiting(t *testing.T) {
	// The code lives a second; the interval is an hour: the code's own
	// expires_in must end the wait, with no poll.
	w := newDeviceWorld(t, []testserver.DeviceOption{
		testserver.WithDeviceInterval(time.Hour),
		testserver.WithDeviceCodeLifetime(time.Second),
	})
	authenticator.SetDeviceWait(w.flow, authenticator.SleepContext)
	_, err := w.token(t.Context(), nil)
	requireAuthorizationError(t, err, "expired_token")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the code expired; the login did not time out")
	assert.Empty(t, w.srv.Polls())
}

func TestDeviceCodeContextCancelled(t *testing.T) {
	t.Run("while waiting between polls", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Hour)})
		// The real pause: an hour, which only ctx can cut short.
		authenticator.SetDeviceWait(w.flow, authenticator.SleepContext)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := w.token(ctx, nil)
			done <- err
		}()
		receiveWithin(t, w.prompt.Written(), "the prompt")
		cancel()
		err := receiveWithin(t, done, "Token to return after cancel")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, w.srv.Polls(), "no poll after cancel")
	})
	t.Run("during a poll", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)})
		polling := make(chan struct{})
		var once sync.Once
		w.srv.SetTokenFault(func(rw http.ResponseWriter, r *http.Request) bool {
			once.Do(func() { close(polling) })
			return testserver.FaultHang()(rw, r)
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := w.token(ctx, nil)
			done <- err
		}()
		receiveWithin(t, polling, "the first poll")
		cancel()
		err := receiveWithin(t, done, "Token to return after cancel")
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("flow timeout", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Hour)},
			withDeviceTimeout(50*time.Millisecond))
		authenticator.SetDeviceWait(w.flow, authenticator.SleepContext)
		_, err := w.token(t.Context(), nil)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, "no approval within 50ms")
		d, ok := authenticator.FlowTimeout(w.flow)
		assert.True(t, ok, "the Keeper bounds a device login by its own timeout")
		assert.Equal(t, 50*time.Millisecond, d)
	})
}

func TestDeviceCodeMalformedAnswers(t *testing.T) {
	t.Run("device authorization not JSON", func(t *testing.T) {
		w := newDeviceWorld(t, nil)
		w.srv.SetDeviceFault(testserver.FaultGarbage())
		_, err := w.token(t.Context(), nil)
		require.Error(t, err)
		var te *authenticator.TokenError
		require.ErrorAs(t, err, &te)
		assert.Contains(t, err.Error(), "not a device authorization response")
		assert.Contains(t, err.Error(), testserver.DeviceAuthorizationPath)
		assert.Empty(t, w.prompt.String(), "nothing shown for a broken answer")
	})
	t.Run("device authorization without fields", func(t *testing.T) {
		w := newDeviceWorld(t, nil)
		w.srv.SetDeviceFault(testserver.FaultBody(http.StatusOK, `{"device_code":"abc","interval":1}`))
		_, err := w.token(t.Context(), nil)
		require.Error(t, err)
		assert.ErrorContains(t, err, "no user_code, verification_uri")
		assert.NotContains(t, err.Error(), "abc", "the device code is a credential")
	})
	t.Run("device authorization error", func(t *testing.T) {
		w := newDeviceWorld(t, nil)
		w.srv.SetDeviceFault(testserver.FaultOAuthError(http.StatusBadRequest, "invalid_scope", "no such scope"))
		_, err := w.token(t.Context(), nil)
		var te *authenticator.TokenError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "invalid_scope", te.ErrorCode)
		assert.Equal(t, http.StatusBadRequest, te.StatusCode)
	})
	for name, fault := range map[string]testserver.Fault{
		"garbled body":       testserver.FaultGarbage(),
		"dropped connection": testserver.FaultCloseConn(),
		"proxy 502":          testserver.FaultStatus(http.StatusBadGateway, "text/html", "<h1>502</h1>"),
	} {
		t.Run("two polls with a "+name+" are survived", func(t *testing.T) {
			w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)})
			w.srv.SetTokenFault(testserver.FaultTimes(2, fault))
			w.approveAt(t, 1)
			_, err := w.token(t.Context(), nil)
			require.NoError(t, err)
			assert.Len(t, w.Waits(), 3)
		})
	}
	t.Run("a hung poll costs one poll", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)})
		// Long enough for the poll that gets the token to be answered in
		// time on a loaded machine: a token the server issued to a poll
		// that gave up is lost with its device code (invalid_grant next).
		authenticator.SetDeviceRequestTimeout(w.flow, 500*time.Millisecond)
		w.srv.SetTokenFault(testserver.FaultOnce(testserver.FaultHang()))
		w.approveAt(t, 1)
		_, err := w.token(t.Context(), nil)
		require.NoError(t, err)
		assert.Len(t, w.Waits(), 2)
	})
	t.Run("garbled polls in a row end the login", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)})
		w.srv.SetTokenFault(testserver.FaultGarbage())
		_, err := w.token(t.Context(), nil)
		require.Error(t, err)
		var te *authenticator.TokenError
		require.ErrorAs(t, err, &te)
		assert.Len(t, w.Waits(), 3)
		assert.NotContains(t, err.Error(), "<html>", "no response body in the error")
	})
	t.Run("a hostile verification URI is shown without control characters", func(t *testing.T) {
		w := newDeviceWorld(t, nil, func(c *authenticator.DeviceConfig) {
			c.Prompter = &loginui.Terminal{Out: c.Prompter.(*loginui.Terminal).Out, QRCode: true}
		})
		w.srv.SetDeviceFault(testserver.FaultOnce(testserver.FaultBody(http.StatusOK,
			`{"device_code":"d","user_code":"AB\u001b[2JCD","verification_uri":"https://op.example/\u001b]0;pwned\u0007dev","expires_in":60,"interval":1}`)))
		w.srv.SetTokenFault(testserver.FaultOAuthError(http.StatusBadRequest, "access_denied", ""))
		_, err := w.token(t.Context(), nil)
		requireAuthorizationError(t, err, "access_denied")
		out := w.prompt.String()
		assert.NotContains(t, out, "\x1b")
		assert.NotContains(t, out, "\a")
		// Each control character becomes a space (internal/redact).
		assert.Contains(t, out, "https://op.example/ ]0;pwned dev")
		assert.Contains(t, out, "and enter the code:\n\n    AB [2JCD\n", "without verification_uri_complete the person types the code")
		assert.Contains(t, out, "█", "Terminal.QRCode shows a QR code")
	})
}

func TestDeviceCodeRefresh(t *testing.T) {
	w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)})
	w.approveAt(t, 1)
	first, err := w.token(t.Context(), nil)
	require.NoError(t, err)
	require.NotEmpty(t, first.RefreshToken)
	promptLen := len(w.prompt.String())

	t.Run("the refresh token is used first", func(t *testing.T) {
		expired := *first
		expired.Expiry = w.clock.Now().Add(-time.Minute)
		second, err := w.token(t.Context(), &expired)
		require.NoError(t, err)
		assert.NotEqual(t, first.AccessToken, second.AccessToken)
		assert.NotEmpty(t, second.RefreshToken)
		assert.Equal(t, int64(1), w.srv.Authorizations(), "no new device login")
		assert.Equal(t, int64(1), w.srv.Refreshes())
		assert.Len(t, w.prompt.String(), promptLen, "nothing shown to the person")
		_, err = w.srv.Validate(t.Context(), second.AccessToken)
		require.NoError(t, err)
		first = second
	})
	t.Run("a transient refresh error is returned, no new login", func(t *testing.T) {
		w.srv.SetTokenFault(testserver.FaultOnce(testserver.FaultStatus(http.StatusServiceUnavailable, "", "")))
		_, err := w.token(t.Context(), first)
		var te *authenticator.TokenError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, http.StatusServiceUnavailable, te.StatusCode)
		assert.Empty(t, te.ErrorCode)
		assert.Equal(t, int64(1), w.srv.Authorizations())
		assert.NotContains(t, err.Error(), first.RefreshToken)
	})
	t.Run("a hung refresh ends at the request timeout, no new login", func(t *testing.T) {
		authenticator.SetDeviceRequestTimeout(w.flow, 50*time.Millisecond)
		defer authenticator.SetDeviceRequestTimeout(w.flow, authenticator.DefaultTokenTimeout)
		// A request that gave up before it reached the server leaves the
		// fault in place: the next subtest must not meet it.
		defer w.srv.SetTokenFault(nil)
		w.srv.SetTokenFault(testserver.FaultOnce(testserver.FaultHang()))
		_, err := w.token(t.Context(), first)
		var te *authenticator.TokenError
		require.ErrorAs(t, err, &te)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "no answer within the token timeout")
		assert.Equal(t, int64(1), w.srv.Authorizations())
	})
	t.Run("invalid_grant asks the person again", func(t *testing.T) {
		w.srv.RevokeRefreshTokens()
		w.approveAt(t, len(w.Waits())+1)
		third, err := w.token(t.Context(), first)
		require.NoError(t, err)
		assert.Equal(t, int64(2), w.srv.Authorizations(), "a new device login")
		out := w.prompt.String()[promptLen:]
		assert.Contains(t, out, "no longer accepted")
		assert.Contains(t, out, w.onlyUserCode(t))
		_, err = w.srv.Validate(t.Context(), third.AccessToken)
		require.NoError(t, err)
	})
}

func TestDeviceCodeConfiguration(t *testing.T) {
	t.Run("options win over the store", func(t *testing.T) {
		w := newDeviceWorld(t, []testserver.DeviceOption{testserver.WithDeviceInterval(time.Second)},
			func(c *authenticator.DeviceConfig) {
				c.ClientID = " " + deviceClientID + " "
				c.AuthorizationURL = "http://127.0.0.1:1/unused"
			})
		w.cfg.ClientID = "someone-else"
		w.cfg.DeviceAuthorizationEndpoint = ""
		// The option's URL is a closed port: the flow must use it.
		_, err := w.token(t.Context(), nil)
		require.Error(t, err)
		assert.ErrorContains(t, err, "127.0.0.1:1/unused")
		id, ok := authenticator.FlowClientID(w.flow)
		assert.True(t, ok, "the flow's client id wins over the store's in the Keeper")
		assert.Equal(t, deviceClientID, id, "trimmed")
	})
	t.Run("missing pieces", func(t *testing.T) {
		w := newDeviceWorld(t, nil)
		w.cfg.ClientID = ""
		_, err := w.token(t.Context(), nil)
		assert.ErrorIs(t, err, authenticator.ErrNoClientID)
		id, _ := authenticator.FlowClientID(w.flow)
		assert.Empty(t, id)

		w = newDeviceWorld(t, nil)
		w.cfg.DeviceAuthorizationEndpoint = ""
		_, err = w.token(t.Context(), nil)
		assert.ErrorIs(t, err, authenticator.ErrNoEndpoint)
		assert.ErrorContains(t, err, "device authorization endpoint")

		w = newDeviceWorld(t, nil)
		w.cfg.TokenEndpoint = ""
		_, err = w.token(t.Context(), nil)
		assert.ErrorIs(t, err, authenticator.ErrNoTokenEndpoint)

		_, err = w.flow.Token(t.Context(), nil, nil)
		assert.Error(t, err)
		assert.Zero(t, w.srv.Authorizations())
	})
	t.Run("bad config", func(t *testing.T) {
		prompter := &loginui.Terminal{Out: new(promptBuffer)}
		for name, c := range map[string]authenticator.DeviceConfig{
			"timeout":  {Prompter: prompter, Timeout: -time.Second},
			"interval": {Prompter: prompter, PollInterval: -time.Second},
			"url":      {Prompter: prompter, AuthorizationURL: "ftp://x/y"},
			"prompter": {},
		} {
			f, err := authenticator.NewDeviceFlow(c)
			assert.Error(t, err, name)
			assert.Nil(t, f, name)
		}
		f, err := authenticator.NewDeviceFlow(authenticator.DeviceConfig{Prompter: prompter})
		require.NoError(t, err)
		d, ok := authenticator.FlowTimeout(f)
		assert.True(t, ok)
		assert.Equal(t, authenticator.DefaultDeviceTimeout, d, "a zero timeout is the default")
		assert.Equal(t, 10*time.Minute, authenticator.DefaultDeviceTimeout)
	})
	t.Run("unknown client", func(t *testing.T) {
		w := newDeviceWorld(t, nil)
		w.cfg.ClientID = "stranger"
		_, err := w.token(t.Context(), nil)
		var te *authenticator.TokenError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "invalid_client", te.ErrorCode)
		assert.NotContains(t, w.prompt.String(), "To sign in")
	})
}

func TestDeviceCodeUnderKeeper(t *testing.T) {
	w := newDeviceWorld(t, []testserver.DeviceOption{
		testserver.WithDeviceInterval(time.Second),
		testserver.WithDeviceTokenLifetime(time.Hour),
	})
	w.approveAt(t, 2)
	store := configstore.NewStatic(*w.cfg)
	cache := &mapCache{m: make(map[string]oauth2.Token)}
	newKeeper := func(flow authenticator.Flow) *authenticator.Keeper {
		k, err := authenticator.New(testEndpoint, store, flow,
			authenticator.WithCache(cache), authenticator.WithClock(w.clock.Now),
			authenticator.WithHTTPClient(w.srv.HTTPClient()))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, k.Close()) })
		return k
	}

	k1 := newKeeper(w.flow)
	first, err := k1.Token(t.Context())
	require.NoError(t, err)
	_, err = w.srv.Validate(t.Context(), first.AccessToken)
	require.NoError(t, err)
	again, err := k1.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, first.AccessToken, again.AccessToken, "the Keeper holds the token")
	assert.Equal(t, int64(1), w.srv.Authorizations())
	promptLen := len(w.prompt.String())

	// A second process: another flow, the same cache.
	flow2, err := authenticator.NewDeviceFlow(authenticator.DeviceConfig{Prompter: &loginui.Terminal{Out: w.prompt}})
	require.NoError(t, err)
	authenticator.SetDeviceWait(flow2, func(context.Context, time.Duration) error {
		t.Error("the second process must not start a device login")
		return errors.New("no login expected")
	})
	k2 := newKeeper(flow2)
	cached, err := k2.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, first.AccessToken, cached.AccessToken, "the cached token is used as it is")
	assert.Equal(t, int64(1), k2.Stats().CacheHits)

	w.clock.Advance(2 * time.Hour) // past the token's expiry, by both clocks
	refreshed, err := k2.Token(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessToken, refreshed.AccessToken)
	assert.Equal(t, int64(1), w.srv.Refreshes(), "the refresh token was used")
	assert.Equal(t, int64(1), w.srv.Authorizations(), "the person was not asked again")
	assert.Len(t, w.prompt.String(), promptLen)
	key, err := k2.CacheKey(t.Context())
	require.NoError(t, err)
	assert.Equal(t, refreshed.AccessToken, cache.get(key).AccessToken)
}

// mapCache is a TokenCache in memory, shared by two Keepers as a file
// would be by two processes. It is safe for concurrent use.
type mapCache struct {
	mu sync.Mutex // guards m
	m  map[string]oauth2.Token
}

func (c *mapCache) Load(_ context.Context, key string) (*oauth2.Token, error) {
	tok, ok := c.lookup(key)
	if !ok {
		return nil, nil
	}
	return &tok, nil
}

func (c *mapCache) lookup(key string) (oauth2.Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok, ok := c.m[key]
	return tok, ok
}

func (c *mapCache) get(key string) oauth2.Token {
	tok, _ := c.lookup(key)
	return tok
}

func (c *mapCache) Save(_ context.Context, key string, tok *oauth2.Token) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = *tok
	return nil
}

func (c *mapCache) Delete(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	return nil
}

func (c *mapCache) Update(_ context.Context, key string, fn func(*oauth2.Token) (*oauth2.Token, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cur *oauth2.Token
	if tok, ok := c.m[key]; ok {
		cur = &tok
	}
	next, err := fn(cur)
	switch {
	case err != nil || next == nil:
		return err
	case next.AccessToken == "" && next.RefreshToken == "":
		delete(c.m, key)
	default:
		c.m[key] = *next
	}
	return nil
}

// TestDeviceBackgroundRefreshNeverAsksThePerson: a refused refresh token
// in the refresh margin starts no device login (no code shown) while the
// token is valid; the call that needs a token after the expiry does.
func TestDeviceBackgroundRefreshNeverAsksThePerson(t *testing.T) {
	w := newDeviceWorld(t, []testserver.DeviceOption{
		testserver.WithDeviceInterval(time.Second),
		testserver.WithDeviceTokenLifetime(5 * time.Minute),
	})
	w.approveAt(t, 1)
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(*w.cfg), w.flow,
		authenticator.WithClock(w.clock.Now), authenticator.WithHTTPClient(w.srv.HTTPClient()),
		authenticator.WithLogger(discardLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, k.Close()) })
	_, first, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	require.Equal(t, int64(1), w.srv.Authorizations())
	w.srv.RevokeRefreshTokens()

	w.clock.Advance(5*time.Minute - 9*time.Second) // in the margin
	_, v, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	assert.Equal(t, first, v, "the valid token is used")
	require.Eventually(t, func() bool { return k.Stats().Failures+w.srv.Authorizations() > 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, int64(1), w.srv.Authorizations(), "no device login from a background refresh")
	assert.NotContains(t, w.prompt.String(), "no longer accepted")

	w.clock.Advance(10 * time.Second) // expired
	w.approveAt(t, len(w.Waits())+1)
	_, v, ok = credOK(k.Credential(t.Context()))
	require.True(t, ok)
	assert.NotEqual(t, first, v)
	assert.Equal(t, int64(2), w.srv.Authorizations(), "the call that needed a token got the login")
}
