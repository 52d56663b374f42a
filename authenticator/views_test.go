package authenticator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// flowFunc adapts a function to an authenticator.Flow.
type flowFunc func(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error)

func (f flowFunc) Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error) {
	return f(ctx, cfg, prev)
}

// toyFlow is the smallest Flow: it hands out numbered tokens with a fixed
// lifetime and counts its calls. It has no line of refresh logic.
type toyFlow struct {
	calls    atomic.Int64
	lifetime time.Duration
	now      func() time.Time
	release  chan struct{} // if set, each call waits for it
}

func (f *toyFlow) Token(ctx context.Context, _ *configstore.ClientConfig, _ *oauth2.Token) (*oauth2.Token, error) {
	n := f.calls.Add(1)
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	tok := &oauth2.Token{AccessToken: fmt.Sprintf("toy-%d", n)}
	if f.lifetime > 0 {
		tok.Expiry = f.now().Add(f.lifetime)
	}
	return tok, nil
}

// TestToyFlowGetsTheKeeperForFree shows that a new flow needs only Token:
// single flight, proactive refresh and rejection-aware refresh come from
// the Keeper.
func TestToyFlowGetsTheKeeperForFree(t *testing.T) {
	clk := newFakeClock()
	flow := &toyFlow{lifetime: 100 * time.Second, now: clk.Now, release: make(chan struct{})}
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(configstore.ClientConfig{}), flow, authenticator.WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(func() { k.Close() })

	// Single flight: 50 first callers, one Token call.
	var wg sync.WaitGroup
	values := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, v, ok := credOK(k.Credential(context.Background()))
			if ok {
				values <- v
			}
		}()
	}
	require.Eventually(t, func() bool { return flow.calls.Load() == 1 }, waitFor, pollAt)
	close(flow.release)
	wg.Wait()
	close(values)
	for v := range values {
		assert.Equal(t, "Bearer toy-1", v)
	}
	assert.EqualValues(t, 1, flow.calls.Load(), "50 concurrent first callers, one token")

	// Proactive refresh: inside the margin, callers keep the valid token
	// while one background request replaces it.
	clk.Advance(95 * time.Second)
	_, v, ok := credOK(k.Credential(context.Background()))
	require.True(t, ok)
	assert.Equal(t, "Bearer toy-1", v, "the still-valid token is used while the refresh runs")
	require.Eventually(t, func() bool { return valueNow(k) == "Bearer toy-2" }, waitFor, pollAt)
	assert.EqualValues(t, 2, flow.calls.Load())
	assert.EqualValues(t, 1, k.Stats().Proactive)

	// Rejection-aware refresh: a late rejection of toy-1 costs nothing, a
	// rejection of the current token one call.
	k.Accepted("Bearer toy-2")
	require.NoError(t, k.Rejected(context.Background(), "Bearer toy-1"))
	assert.EqualValues(t, 2, flow.calls.Load())
	require.NoError(t, k.Rejected(context.Background(), "Bearer toy-2"))
	assert.EqualValues(t, 3, flow.calls.Load())
	assert.Equal(t, "Bearer toy-3", valueNow(k))
}

// newToyKeeper is a Keeper of toyFlow on a fake clock.
func newToyKeeper(t *testing.T) (*authenticator.Keeper, *toyFlow, *testserver.Clock) {
	t.Helper()
	clk := newFakeClock()
	flow := &toyFlow{now: clk.Now}
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(configstore.ClientConfig{}), flow, authenticator.WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(func() { k.Close() })
	return k, flow, clk
}

// TestRejectionBackoff: a server that rejects every fresh token gets one
// token request per backoff period, not one per call, and a minute without
// a rejection ends the backoff.
func TestRejectionBackoff(t *testing.T) {
	k, flow, clk := newToyKeeper(t)
	ctx := context.Background()
	// toy-1 is rejected: it may have been revoked between its request and
	// its use, so a new one is asked for at once.
	require.NoError(t, k.Rejected(ctx, currentValue(t, k)))
	require.EqualValues(t, 2, flow.calls.Load())
	// toy-2, fresh, is rejected too: from now on the Keeper backs off.
	for range 100 {
		err := k.Rejected(ctx, "Bearer toy-2")
		require.ErrorIs(t, err, authenticator.ErrRejectedBackoff)
	}
	assert.EqualValues(t, 2, flow.calls.Load(), "100 rejected calls within the backoff, no request")

	clk.Advance(2 * time.Second) // past the first backoff (1 s ± 20%)
	require.NoError(t, k.Rejected(ctx, "Bearer toy-2"))
	assert.EqualValues(t, 3, flow.calls.Load())
	require.ErrorIs(t, k.Rejected(ctx, "Bearer toy-3"), authenticator.ErrRejectedBackoff, "the backoff doubles")
	clk.Advance(time.Second + 500*time.Millisecond)
	require.ErrorIs(t, k.Rejected(ctx, "Bearer toy-3"), authenticator.ErrRejectedBackoff, "2 s ± 20% not yet over")

	// A call accepted toy-3 after all: that alone ends no backoff.
	k.Accepted("Bearer toy-3")
	err := k.Rejected(ctx, "Bearer toy-3")
	require.ErrorIs(t, err, authenticator.ErrRejectedBackoff)
	assert.ErrorContains(t, err, "accepted by other calls", "the error points at the one service that rejects")
	assert.EqualValues(t, 3, flow.calls.Load())
	// A minute without any rejection does: the next one refreshes at once.
	clk.Advance(time.Minute)
	require.NoError(t, k.Rejected(ctx, "Bearer toy-3"))
	assert.EqualValues(t, 4, flow.calls.Load())
}

// TestRejectionStormWhenOtherCallsAccept: one service rejects every token
// that another service, behind the same Keeper, accepts. Each call to the
// first used to cost a token request (about 5,000 a minute); the backoff
// now holds whatever other calls do. Ten simulated minutes, a call to each
// service every 10 ms.
func TestRejectionStormWhenOtherCallsAccept(t *testing.T) {
	k, flow, clk := newToyKeeper(t)
	ctx := context.Background()

	const minutes = 10
	backedOff := 0
	for range minutes * 6000 {
		v := currentValue(t, k)
		k.Accepted(v)                              // service A
		if err := k.Rejected(ctx, v); err != nil { // service B
			require.ErrorIs(t, err, authenticator.ErrRejectedBackoff)
			backedOff++
		}
		clk.Advance(10 * time.Millisecond)
	}
	requests := flow.calls.Load()
	t.Logf("%d token requests in %d simulated minutes (%.1f a minute); %d of %d rejections backed off", requests, minutes, float64(requests)/minutes, backedOff, minutes*6000)
	// The first token, 5 replaced at once (accepted tokens), then after
	// 1 s, 2 s, ... 32 s (6 in the first 63 s or so), then one per 48-72 s:
	// at most 1 + 5 + 6 + 10.
	assert.LessOrEqual(t, requests, int64(22))
}

func TestTokenSourceView(t *testing.T) {
	ts := newDefaultTokenServer(t)
	k := newAuth(t, staticFor(ts))
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, err := ts.Validate(r.Context(), tok); err != nil {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	t.Cleanup(api.Close)

	hc := oauth2.NewClient(context.Background(), k.TokenSource())
	resp, err := hc.Get(api.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello", string(body))

	tok, err := k.TokenSource().Token()
	require.NoError(t, err)
	assert.Empty(t, tok.RefreshToken, "the refresh token stays inside the Keeper")
	assert.EqualValues(t, 1, ts.Requests())
}

func TestPerRPCCredentialsView(t *testing.T) {
	ts := newDefaultTokenServer(t)
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	tlsAdmin, err := testserver.NewAdminServer(testserver.WithBufconn(), testserver.WithAdminTLS(ca), testserver.WithValidator(ts))
	require.NoError(t, err)
	t.Cleanup(tlsAdmin.Close)
	plainAdmin, err := testserver.NewAdminServer(testserver.WithBufconn(), testserver.WithValidator(ts))
	require.NoError(t, err)
	t.Cleanup(plainAdmin.Close)
	k := newAuth(t, staticFor(ts))

	t.Run("over TLS", func(t *testing.T) {
		cc, err := grpc.NewClient(tlsAdmin.Addr(), append(tlsAdmin.DialOptions(), grpc.WithPerRPCCredentials(k.PerRPCCredentials(false)))...)
		require.NoError(t, err)
		defer cc.Close()
		got, err := testserver.NewEchoClient(cc).Unary(context.Background(), "hi")
		require.NoError(t, err)
		assert.Equal(t, "hi", got)
	})
	t.Run("refused on plaintext without the opt-in", func(t *testing.T) {
		_, err := grpc.NewClient(plainAdmin.Addr(), append(plainAdmin.DialOptions(), grpc.WithPerRPCCredentials(k.PerRPCCredentials(false)))...)
		require.Error(t, err, "grpc-go refuses credentials that require transport security on a plaintext connection")

		// As a call option, the transport is checked per call.
		cc, err := grpc.NewClient(plainAdmin.Addr(), plainAdmin.DialOptions()...)
		require.NoError(t, err)
		defer cc.Close()
		plainAdmin.ResetCounters()
		_, err = testserver.NewEchoClient(cc).Unary(context.Background(), "hi", grpc.PerRPCCredentials(k.PerRPCCredentials(false)))
		require.Error(t, err)
		assert.Zero(t, plainAdmin.EchoCalls(), "nothing reached the plaintext server")
	})
	t.Run("plaintext with the opt-in", func(t *testing.T) {
		cc, err := grpc.NewClient(plainAdmin.Addr(), append(plainAdmin.DialOptions(), grpc.WithPerRPCCredentials(k.PerRPCCredentials(true)))...)
		require.NoError(t, err)
		defer cc.Close()
		_, err = testserver.NewEchoClient(cc).Unary(context.Background(), "hi")
		require.NoError(t, err)
	})
	t.Run("per-RPC security is decided per call", func(t *testing.T) {
		// One credentials value used on a TLS and a plaintext connection:
		// the TLS call carries the token, the plaintext one is refused.
		creds := k.PerRPCCredentials(false)
		tlsCC, err := grpc.NewClient(tlsAdmin.Addr(), tlsAdmin.DialOptions()...)
		require.NoError(t, err)
		defer tlsCC.Close()
		plainCC, err := grpc.NewClient(plainAdmin.Addr(), append(plainAdmin.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		require.NoError(t, err)
		defer plainCC.Close()
		for range 3 {
			_, err := testserver.NewEchoClient(tlsCC).Unary(context.Background(), "x", grpc.PerRPCCredentials(creds))
			require.NoError(t, err)
			_, err = testserver.NewEchoClient(plainCC).Unary(context.Background(), "x", grpc.PerRPCCredentials(creds))
			require.Error(t, err)
			assert.NotEqual(t, codes.OK, status.Code(err))
		}
	})
}

func TestHTTPClientView(t *testing.T) {
	ts := newDefaultTokenServer(t)
	var hits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, err := ts.Validate(r.Context(), tok); err != nil {
			http.Error(w, "token rejected", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "got %s", body)
	}))
	t.Cleanup(api.Close)
	k := newAuth(t, staticFor(ts))
	hc := &http.Client{Transport: k.Transport(nil)}

	post := func(body io.Reader) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, api.URL, body)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := post(strings.NewReader("one"))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "got one", body)
	assert.EqualValues(t, 1, ts.Requests())

	t.Run("401 means one refresh and one retry with the body replayed", func(t *testing.T) {
		ts.RevokeAll()
		hits.Store(0)
		code, body := post(strings.NewReader("two"))
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "got two", body)
		assert.EqualValues(t, 2, hits.Load(), "the rejected request and its retry")
		assert.EqualValues(t, 2, ts.Requests())
	})
	t.Run("a body that cannot be read again is not retried", func(t *testing.T) {
		ts.RevokeAll()
		hits.Store(0)
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte("three"))
			pw.Close()
		}()
		code, _ := post(pr)
		assert.Equal(t, http.StatusUnauthorized, code)
		assert.EqualValues(t, 1, hits.Load(), "no retry without GetBody")
	})
	t.Run("no token to plain http on another host", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, "http://flyte.example:80/api", nil)
		require.NoError(t, err)
		_, err = hc.Do(req)
		require.Error(t, err)
		assert.True(t, errors.Is(err, authenticator.ErrInsecureEndpoint), "%v", err)
	})
}

func TestCloseStopsATokenRequestInFlight(t *testing.T) {
	flow := &toyFlow{release: make(chan struct{})} // never released
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(configstore.ClientConfig{}), flow)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- k.RefreshCredentials(context.Background()) }()
	require.Eventually(t, func() bool { return flow.calls.Load() == 1 }, waitFor, pollAt)
	require.NoError(t, k.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, authenticator.ErrClosed)
	case <-time.After(waitFor):
		t.Fatal("Close did not end the token request in flight")
	}
	require.ErrorIs(t, k.RefreshCredentials(context.Background()), authenticator.ErrClosed)
}

func TestPlainHTTPTokenEndpointRefused(t *testing.T) {
	for _, tt := range []struct {
		name, url string
		opts      []authenticator.Option
		wantErr   bool
	}{
		{name: "http on another host", url: "http://idp.example/token", wantErr: true},
		{name: "http on another host, opted in", url: "http://idp.example/token", opts: []authenticator.Option{authenticator.WithInsecure()}},
		{name: "http on loopback", url: "http://127.0.0.1:1/token"},
		{name: "http on localhost", url: "http://localhost:1/token"},
		{name: "https", url: "https://idp.example/token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var flowCalled atomic.Bool
			flow := flowFunc(func(context.Context, *configstore.ClientConfig, *oauth2.Token) (*oauth2.Token, error) {
				flowCalled.Store(true)
				return &oauth2.Token{AccessToken: "t"}, nil
			})
			k, err := authenticator.New(testEndpoint, configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: tt.url}), flow, tt.opts...)
			require.NoError(t, err)
			defer k.Close()
			err = k.RefreshCredentials(context.Background())
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, authenticator.ErrInsecureEndpoint)
			assert.Contains(t, err.Error(), "cleartext")
			assert.False(t, flowCalled.Load(), "no credential went anywhere")
		})
	}
}

func TestLazyStartWaitsForARejection(t *testing.T) {
	flow := &toyFlow{}
	k, err := authenticator.New(testEndpoint, configstore.NewStatic(configstore.ClientConfig{}), flow, authenticator.WithLazyStart())
	require.NoError(t, err)
	defer k.Close()
	for range 3 {
		_, _, err := k.Credential(context.Background())
		require.ErrorIs(t, err, authenticator.ErrNoToken, "no token before a server asked for one")
	}
	assert.Zero(t, flow.calls.Load())
	require.NoError(t, k.Rejected(context.Background(), ""))
	assert.Equal(t, "Bearer toy-1", currentValue(t, k))
	assert.EqualValues(t, 1, flow.calls.Load())
}
