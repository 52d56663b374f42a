package interceptor_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestNoTokenYetProtectedServer(t *testing.T) {
	// An authenticator that holds no token (the fake does not fetch one on
	// first use): the call goes out without one, is rejected, and is sent
	// again after one refresh.
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			var retries counter
			e := newFakeEnv(t, envConfig{opts: []interceptor.Option{retries.option()}})
			got, err := sh.call(testContext(t), e.echo)
			require.NoError(t, err)
			assert.Equal(t, sh.want, got)
			assert.EqualValues(t, 1, e.auth.refreshes.Load())
			assert.EqualValues(t, 2, e.admin.EchoCalls())
			assert.EqualValues(t, 1, e.admin.Rejected())
			assert.EqualValues(t, 1, retries.n.Load())

			// The token is kept: the next call needs neither.
			_, err = sh.call(testContext(t), e.echo)
			require.NoError(t, err)
			assert.EqualValues(t, 1, e.auth.refreshes.Load())
			assert.EqualValues(t, 3, e.admin.EchoCalls())
		})
	}
}

// fakeClock is a clock a test moves forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestRejectedTokenIsRefreshedAndCallRetriedOnce(t *testing.T) {
	for _, cause := range []string{"revoked", "expired"} {
		for _, sh := range shapes {
			t.Run(cause+"/"+sh.name, func(t *testing.T) {
				// Only the token server's clock moves: the authenticator
				// still believes its token valid and sends it.
				var clock fakeClock
				var retries counter
				e := newEnv(t, envConfig{
					tokenOpts: []testserver.TokenOption{testserver.WithTokenClock(clock.now)},
					opts:      []interceptor.Option{retries.option()},
				})
				e.prime(t)
				old := e.token(t)
				if cause == "revoked" {
					e.tokens.RevokeAll()
				} else {
					clock.advance(2 * time.Hour)
				}

				got, err := sh.call(testContext(t), e.echo)
				require.NoError(t, err)
				assert.Equal(t, sh.want, got)
				assert.EqualValues(t, 1, e.tokens.Requests())
				assert.EqualValues(t, 2, e.admin.EchoCalls())
				assert.EqualValues(t, 1, retries.n.Load())
				assert.NotEqual(t, old, e.token(t))
				assert.Equal(t, []string{e.token(t)}, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey))
			})
		}
	}
}

func TestAlwaysRejectingServerGetsExactlyTwoAttempts(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.prime(t)
			e.admin.SetRejectAll(true)

			_, err := sh.call(testContext(t), e.echo)
			require.Error(t, err)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			var re *interceptor.RefreshError
			assert.False(t, errors.As(err, &re), "the refresh worked; the retry's rejection is returned as it is")
			assert.EqualValues(t, 2, e.admin.EchoCalls())
			assert.EqualValues(t, 1, e.tokens.Requests())
		})
	}
}

func TestRefreshFailureKeepsCodeAndCause(t *testing.T) {
	for _, primed := range []bool{false, true} {
		name := "no token yet"
		if primed {
			name = "token revoked"
		}
		for _, sh := range shapes {
			t.Run(name+"/"+sh.name, func(t *testing.T) {
				e := newEnv(t, envConfig{})
				var token string
				if primed {
					e.prime(t)
					token = e.token(t)
					e.tokens.RevokeAll()
				}
				e.tokens.SetFault(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "client authentication failed"))

				_, err := sh.call(testContext(t), e.echo)
				require.Error(t, err)
				assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
				msg := status.Convert(err).Message()
				assert.Contains(t, msg, "invalid_client")

				var te *authenticator.TokenError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, "invalid_client", te.ErrorCode)
				assert.Equal(t, http.StatusUnauthorized, te.StatusCode)
				var re *interceptor.RefreshError
				if primed {
					require.ErrorAs(t, err, &re, "the revoked token's rejection, then the failed refresh")
					assert.Equal(t, codes.Unauthenticated, re.Code)
				} else {
					assert.False(t, errors.As(err, &re), "no call went out to be rejected")
					assert.Contains(t, msg, "not sent")
				}

				for _, text := range []string{err.Error(), msg} {
					assert.NotContains(t, text, clientSecret)
					if token != "" {
						assert.NotContains(t, text, token[len("Bearer "):])
					}
				}
				assert.EqualValues(t, 1, e.tokens.Requests())
				if primed {
					assert.EqualValues(t, 1, e.admin.EchoCalls(), "no retry without new credentials")
				} else {
					assert.Zero(t, e.admin.EchoCalls(), "no call without a token")
				}
			})
		}
	}
}

func TestConcurrentRejectedCallsShareOneRefresh(t *testing.T) {
	const calls = 200
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.prime(t)
			e.tokens.RevokeAll()
			// Hold the token request until every call has been rejected,
			// so all of them carried the revoked token.
			g := newGate()
			t.Cleanup(g.release)
			e.tokens.SetFault(g.fault())

			ctx := testContext(t)
			errs := make(chan error, calls)
			var wg sync.WaitGroup
			for range calls {
				wg.Go(func() {
					got, err := sh.call(ctx, e.echo)
					if err == nil && got != sh.want {
						err = errors.New("got " + got)
					}
					errs <- err
				})
			}
			eventually(t, func() bool { return e.admin.Rejected() == calls }, "every call rejected once")
			g.release()
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			assert.EqualValues(t, 1, e.tokens.Requests())
			assert.EqualValues(t, 2*calls, e.admin.EchoCalls())
		})
	}
}

// holdFirst is an inner unary interceptor that, on the first call only,
// reports that the attempt went out and holds its result until released.
type holdFirst struct {
	started, release chan struct{}
	calls            atomic.Int64
}

func newHoldFirst() *holdFirst {
	return &holdFirst{started: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdFirst) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if h.calls.Add(1) != 1 {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	close(h.started)
	err := invoker(ctx, method, req, reply, cc, opts...)
	<-h.release
	return err
}

func TestLateRejectionOfReplacedTokenCostsNoTokenRequest(t *testing.T) {
	hold := newHoldFirst()
	e := newEnv(t, envConfig{unaryInner: []grpc.UnaryClientInterceptor{hold.unary}})
	e.prime(t)
	e.tokens.RevokeAll()
	ctx := testContext(t)

	late := make(chan error, 1)
	go func() {
		_, err := e.echo.Unary(ctx, "late")
		late <- err
	}()
	<-hold.started // the late call went out with the revoked token

	got, err := e.echo.Unary(ctx, "early")
	require.NoError(t, err)
	assert.Equal(t, "early", got)
	require.EqualValues(t, 1, e.tokens.Requests())

	close(hold.release) // now the late call learns it was rejected
	require.NoError(t, <-late)
	assert.EqualValues(t, 1, e.tokens.Requests(), "the rejected token had already been replaced")
	assert.EqualValues(t, 4, e.admin.EchoCalls())
	assert.EqualValues(t, 2, e.admin.Rejected())
}

func TestCallerDeadlineBoundsTheRefresh(t *testing.T) {
	// The token endpoint never answers. The caller's deadline, far beyond
	// what a rejection takes, ends the wait that would otherwise last the
	// token timeout, and the call reports it: DeadlineExceeded, not
	// Unauthenticated.
	for _, primed := range []bool{false, true} {
		name := "first token"
		if primed {
			name = "after a rejection"
		}
		for _, sh := range shapes {
			t.Run(name+"/"+sh.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, envConfig{})
				if primed {
					e.prime(t)
					e.tokens.RevokeAll()
				}
				e.tokens.SetFault(testserver.FaultHang())

				ctx, cancel := context.WithTimeout(testContext(t), time.Second)
				defer cancel()
				_, err := sh.call(ctx, e.echo)
				require.Error(t, err)
				assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				if primed {
					// Rejected, then waiting for the refresh.
					var re *interceptor.RefreshError
					assert.ErrorAs(t, err, &re)
					assert.EqualValues(t, 1, e.admin.EchoCalls())
				} else {
					// Waiting for the first token: nothing was sent.
					assert.Contains(t, err.Error(), "waiting for a token")
					assert.Zero(t, e.admin.EchoCalls())
				}
				eventually(t, func() bool { return e.tokens.Requests() == 1 }, "the refresh started")
			})
		}
	}
}

// cancelOnFailure is a pair of inner interceptors that cancel the call's
// context as soon as an attempt fails, before the interceptors under test
// see the failure.
type cancelOnFailure struct {
	mu     sync.Mutex // guards cancel
	cancel context.CancelFunc
}

func (c *cancelOnFailure) set(cancel context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancel = cancel
}

func (c *cancelOnFailure) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancel()
}

func (c *cancelOnFailure) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		c.fire()
	}
	return err
}

func (c *cancelOnFailure) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		c.fire()
		return nil, err
	}
	return &cancelingStream{ClientStream: cs, c: c}, nil
}

type cancelingStream struct {
	grpc.ClientStream
	c *cancelOnFailure
}

func (s *cancelingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.c.fire()
	}
	return err
}

func TestCancelledCallerIsNotRetried(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			c := new(cancelOnFailure)
			e := newEnv(t, envConfig{
				unaryInner:  []grpc.UnaryClientInterceptor{c.unary},
				streamInner: []grpc.StreamClientInterceptor{c.stream},
			})
			e.prime(t)
			e.tokens.RevokeAll()
			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			c.set(cancel)

			_, err := sh.call(ctx, e.echo)
			require.Error(t, err)
			assert.Contains(t, []codes.Code{codes.Unauthenticated, codes.Canceled}, status.Code(err), "%v", err)
			// No refresh was even tried: the rejection comes back as it is.
			var re *interceptor.RefreshError
			assert.False(t, errors.As(err, &re), "%v", err)
			assert.EqualValues(t, 1, e.admin.EchoCalls())
			assert.Zero(t, e.tokens.Requests())
		})
	}
}

// unknownOnce is an inner unary interceptor that turns the first attempt's
// outcome into codes.Unknown, as some proxies report an auth failure.
type unknownOnce struct{ calls atomic.Int64 }

func (u *unknownOnce) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if u.calls.Add(1) == 1 {
		return status.Error(codes.Unknown, "proxy: upstream said no")
	}
	return err
}

func TestWithRefreshCodes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        []interceptor.Option
		wantCode    codes.Code
		wantAttempt int64
		wantTokens  int64
	}{
		{"default: Unknown is returned", nil, codes.Unknown, 1, 0},
		{"Unknown refreshes", []interceptor.Option{interceptor.WithRefreshCodes(codes.Unauthenticated, codes.Unknown)}, codes.OK, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := new(unknownOnce)
			e := newEnv(t, envConfig{opts: tc.opts, unaryInner: []grpc.UnaryClientInterceptor{u.unary}})
			e.prime(t)
			old := e.token(t)

			_, err := e.echo.Unary(testContext(t), "hi")
			assert.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			assert.Equal(t, tc.wantAttempt, u.calls.Load())
			assert.Equal(t, tc.wantTokens, e.tokens.Requests())
			if tc.wantTokens > 0 {
				assert.NotEqual(t, old, e.token(t))
			}
		})
	}
}

func TestWithRefreshCodesWithoutUnauthenticated(t *testing.T) {
	// Only the listed codes refresh: a rejection is then returned as is.
	e := newFakeEnv(t, envConfig{opts: []interceptor.Option{interceptor.WithRefreshCodes(codes.Unknown)}})
	e.prime(t)
	e.auth.revoke()
	for _, sh := range shapes {
		_, err := sh.call(testContext(t), e.echo)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%s: %v", sh.name, err)
	}
	assert.Zero(t, e.auth.refreshes.Load())
	assert.EqualValues(t, len(shapes), e.admin.EchoCalls())
}

func TestCallerCancelledWhileRefreshingGetsCanceled(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newFakeEnv(t, envConfig{})
			e.prime(t)
			e.auth.revoke()
			t.Cleanup(e.auth.holdRefreshes())

			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := sh.call(ctx, e.echo)
				errc <- err
			}()
			eventually(t, func() bool { return e.auth.refreshes.Load() == 1 }, "the call waits for a refresh")
			cancel()
			err := <-errc
			assert.Equal(t, codes.Canceled, status.Code(err), "%v", err)
			assert.ErrorIs(t, err, context.Canceled)
			assert.EqualValues(t, 1, e.admin.EchoCalls())
		})
	}
}

func TestAcceptedHearsOfTheTokenThatWorked(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			t.Run("accepted", func(t *testing.T) {
				e := newFakeEnv(t, envConfig{})
				e.prime(t)
				_, err := sh.call(testContext(t), e.echo)
				require.NoError(t, err)
				assert.Equal(t, []string{e.auth.current()}, e.auth.acceptedValues(), "once per call")
			})
			t.Run("rejected, then accepted", func(t *testing.T) {
				e := newFakeEnv(t, envConfig{})
				e.prime(t)
				old := e.auth.current()
				e.auth.revoke()
				_, err := sh.call(testContext(t), e.echo)
				require.NoError(t, err)
				assert.NotEqual(t, old, e.auth.current())
				assert.Equal(t, []string{e.auth.current()}, e.auth.acceptedValues(), "the retry's token only")
			})
			t.Run("always rejected", func(t *testing.T) {
				e := newFakeEnv(t, envConfig{})
				e.prime(t)
				e.admin.SetRejectAll(true)
				_, err := sh.call(testContext(t), e.echo)
				require.Error(t, err)
				assert.Empty(t, e.auth.acceptedValues())
			})
			t.Run("withheld on plaintext", func(t *testing.T) {
				e := newFakeEnv(t, envConfig{plaintext: true, open: true})
				e.prime(t)
				_, err := sh.call(testContext(t), e.echo)
				require.NoError(t, err)
				assert.Empty(t, e.auth.acceptedValues(), "no token went out")
			})
		})
	}
}

func TestAcceptedAllocatesNothing(t *testing.T) {
	e := newFakeEnv(t, envConfig{open: true})
	e.prime(t)
	ours := interceptor.UnaryClientInterceptor(e.auth)
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := context.Background()
	// The fake's Accepted appends to a slice: give it room first.
	e.auth.mu.Lock()
	e.auth.accepted = make([]string, 0, 2000)
	e.auth.mu.Unlock()
	// The invoker never asks the credentials, so nothing is withheld and
	// every call reports its token: only the attach allocates.
	n := testing.AllocsPerRun(1000, func() { _ = ours(ctx, testserver.EchoUnaryMethod, nil, nil, nil, invoker) })
	assert.LessOrEqual(t, n, 1.0, "allocations per call")
	assert.NotEmpty(t, e.auth.acceptedValues())
}

func TestRefreshErrorWrapsTheAuthenticatorsError(t *testing.T) {
	sentinel := errors.New("fake: the identity provider said no")
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newFakeEnv(t, envConfig{})
			e.prime(t)
			e.auth.revoke()
			e.auth.setFail(sentinel)

			_, err := sh.call(testContext(t), e.echo)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			assert.ErrorIs(t, err, sentinel)
			var re *interceptor.RefreshError
			assert.ErrorAs(t, err, &re)
			assert.EqualValues(t, 1, e.auth.refreshes.Load())
			assert.EqualValues(t, 1, e.admin.EchoCalls(), "no retry without new credentials")
		})
	}
}
