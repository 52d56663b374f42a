package connectauth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// Every call carries the keeper's token; the first call waits for it.
func TestUnaryAttach(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			echo := r.echo(t, p.opts)
			for i := range 3 {
				resp, err := echo.Echo(ctx(t), req("hi"))
				require.NoError(t, err, "call %d", i)
				assert.Equal(t, "hi", resp.Msg.GetValue())
			}
			assert.Equal(t, int64(1), r.tokens.Issued())
			assert.Equal(t, int64(3), r.srv.EchoCalls(), "one attempt per call")
			assert.Zero(t, r.srv.Rejected())
			values := r.srv.EchoAuthValues()
			require.Len(t, values, 3)
			for _, v := range values {
				assert.True(t, strings.HasPrefix(v, "Bearer "), "Bearer scheme")
				assert.Equal(t, values[0], v)
			}
		})
	}
}

// A call whose token the server no longer accepts is refreshed and sent
// again with the new token.
func TestUnaryRefreshAndRetry(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			echo := r.echo(t, p.opts)
			_, err := echo.Echo(ctx(t), req("warm"))
			require.NoError(t, err)
			r.tokens.RevokeAll()
			_, err = echo.Echo(ctx(t), req("again"))
			require.NoError(t, err)
			values := r.srv.EchoAuthValues()
			require.Len(t, values, 3)
			assert.Equal(t, values[0], values[1], "the revoked token went out once more")
			assert.NotEqual(t, values[1], values[2], "the retry carried the new token")
			assert.Equal(t, int64(2), r.tokens.Issued())
		})
	}
}

// 1,000 concurrent calls whose token the server no longer accepts cause
// one token request.
func TestUnaryStormOneRefresh(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{plaintext: true})
			echo := r.echo(t, p.opts)
			_, err := echo.Echo(ctx(t), req("warm"))
			require.NoError(t, err)
			r.tokens.RevokeAll()
			r.tokens.ResetCounters()
			r.srv.ResetCounters()

			n := stormSize(p.name)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			c, cancel := context.WithTimeout(context.Background(), stormTimeout)
			defer cancel()
			for range n {
				wg.Go(func() {
					if _, err := echo.Echo(c, req("storm")); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			assert.Equal(t, int64(1), r.tokens.Requests(), "one token request for the whole storm")
			// Calls sent after the new token arrived are not rejected.
			rejected := r.srv.Rejected()
			assert.Positive(t, rejected)
			assert.Equal(t, int64(n)+rejected, r.srv.EchoCalls(), "one retry per rejected call")
		})
	}
}

// A call rejected twice is sent twice, not more, and returns the rejection.
func TestUnaryRetryOnce(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			var retries []string
			echo := r.echo(t, p.opts, interceptor.WithOnRetry(func(procedure string, code codes.Code) {
				retries = append(retries, procedure+" "+connect.Code(code).String())
			}))
			_, err := echo.Echo(ctx(t), req("warm"))
			require.NoError(t, err)
			r.srv.ResetCounters()
			r.srv.SetRejectAll(true)
			_, err = echo.Echo(ctx(t), req("x"))
			require.Error(t, err)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
			assert.Contains(t, err.Error(), "SetRejectAll")
			assert.Equal(t, int64(2), r.srv.EchoCalls())
			assert.Equal(t, []string{"/grpcauth.testecho.v1.EchoService/Echo unauthenticated"}, retries)
		})
	}
}

// A refresh that fails returns the rejected call's code, with the token
// error reachable and no secret in the text.
func TestUnaryRefreshFails(t *testing.T) {
	r := newRig(t, rigConfig{})
	echo := r.echo(t, nil)
	_, err := echo.Echo(ctx(t), req("first"))
	require.NoError(t, err)
	r.tokens.RevokeAll()
	r.tokens.SetFault(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "bad client"))
	_, err = echo.Echo(ctx(t), req("x"))
	require.Error(t, err)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	var re *interceptor.RefreshError
	require.ErrorAs(t, err, &re)
	var te *authenticator.TokenError
	require.ErrorAs(t, err, &te)
	assert.Contains(t, err.Error(), "invalid_client")
	assert.NotContains(t, err.Error(), clientSecret)
	assert.Equal(t, int64(2), r.srv.EchoCalls(), "no retry without a token")
}

// The caller's deadline bounds the refresh; the call ends with the
// context's code.
func TestUnaryCallerDeadline(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			r.tokens.SetFault(testserver.FaultHang())
			echo := r.echo(t, p.opts)
			c, cancel := context.WithCancel(ctx(t))
			go func() {
				// Cancel once the first attempt has been rejected and the
				// refresh is waiting on the hanging token endpoint.
				for r.tokens.Requests() == 0 {
					if c.Err() != nil {
						return
					}
					waitABit(c)
				}
				cancel()
			}()
			_, err := echo.Echo(c, req("x"))
			cancel()
			require.Error(t, err)
			assert.Equal(t, connect.CodeCanceled, connect.CodeOf(err), "%v", err)
			assert.True(t, errors.Is(err, context.Canceled))

			dl, dcancel := context.WithTimeout(ctx(t), 1)
			defer dcancel()
			<-dl.Done()
			_, err = echo.Echo(dl, req("x"))
			assert.Equal(t, connect.CodeDeadlineExceeded, connect.CodeOf(err), "%v", err)
		})
	}
}

// waitABit yields for a moment, polling-style, until c ends.
func waitABit(c context.Context) {
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Done():
	}
}

// Plain HTTP to a host that is not loopback carries no token unless the
// caller opted in.
func TestNoTokenOverPlainHTTP(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{plaintext: true})
			require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
			hc := redirectDialer(r.srv.Addr())
			t.Cleanup(hc.CloseIdleConnections)
			const base = "http://flyte.example"

			ic, err := connectauth.NewInterceptor(r.auth, base)
			require.NoError(t, err)
			echo := flyte2pbconnect.NewEchoServiceClient(hc, base, append([]connect.ClientOption{connect.WithInterceptors(ic)}, p.opts...)...)
			_, err = echo.Echo(ctx(t), req("x"))
			require.Error(t, err)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
			assert.Contains(t, err.Error(), "no token was sent")
			assert.Equal(t, []string{""}, r.srv.EchoAuthValues(), "one attempt, without a token")

			r.srv.ResetCounters()
			ic, err = connectauth.NewInterceptor(r.auth, base, interceptor.WithInsecure())
			require.NoError(t, err)
			echo = flyte2pbconnect.NewEchoServiceClient(hc, base, append([]connect.ClientOption{connect.WithInterceptors(ic)}, p.opts...)...)
			_, err = echo.Echo(ctx(t), req("x"))
			require.NoError(t, err)
			assert.Equal(t, int64(1), r.srv.EchoCalls())

			// Loopback plain HTTP needs no opt-in.
			echo = r.echo(t, p.opts)
			_, err = echo.Echo(ctx(t), req("x"))
			require.NoError(t, err)
		})
	}
}

// AuthMetadataService's procedures are anonymous: no token, no retry.
func TestSkipsAuthMetadataService(t *testing.T) {
	r := newRig(t, rigConfig{})
	require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
	ic, err := connectauth.NewInterceptor(r.auth, r.srv.URL())
	require.NoError(t, err)
	meta := flyte2pbconnect.NewAuthMetadataServiceClient(r.http, r.srv.URL(), connect.WithInterceptors(ic))
	_, err = meta.GetPublicClientConfig(ctx(t), connect.NewRequest(&flyte2pb.GetPublicClientConfigRequest{}))
	require.NoError(t, err)
	assert.False(t, r.srv.MetadataRPCsSawToken())
}

func TestNewInterceptorErrors(t *testing.T) {
	_, err := connectauth.NewInterceptor(nil, "https://x")
	require.Error(t, err)
	var nilAuth *authenticator.Keeper
	_, err = connectauth.NewInterceptor(nilAuth, "https://x")
	require.Error(t, err)
	r := newRig(t, rigConfig{})
	for _, bad := range []string{"", "flyte:443", "ftp://x", "https://"} {
		_, err = connectauth.NewInterceptor(r.auth, bad)
		require.Error(t, err, bad)
	}
}
