package connectauth_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// recvAll reads a server stream to its end.
func recvAll(s *connect.ServerStreamForClient[flyte2pb.EchoResponse]) ([]string, error) {
	var got []string
	for s.Receive() {
		got = append(got, s.Msg().GetValue())
	}
	return got, s.Err()
}

// chat sends values on a bidi stream, closes it and reads every answer.
func chat(t *testing.T, echo flyte2pbconnect.EchoServiceClient, values ...string) ([]string, error) {
	t.Helper()
	s := echo.Chat(ctx(t))
	for _, v := range values {
		if err := s.Send(&flyte2pb.EchoRequest{Value: v}); err != nil {
			if errors.Is(err, io.EOF) {
				break // Receive says why
			}
			return nil, err
		}
	}
	require.NoError(t, s.CloseRequest())
	var got []string
	for {
		m, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return got, s.CloseResponse()
		}
		if err != nil {
			_ = s.CloseResponse()
			return got, err
		}
		got = append(got, m.GetValue())
	}
}

// Every kind of stream carries the token; one whose token the server no
// longer accepts is rejected before any response and retried once with a
// new token, the sent messages replayed.
func TestStreamsAttachAndRetry(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			echo := r.echo(t, p.opts)

			got, err := chat(t, echo, "first")
			require.NoError(t, err)
			assert.Equal(t, []string{"first"}, got)

			r.tokens.RevokeAll()
			got, err = chat(t, echo, "a", "b", "c")
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "b", "c"}, got)
			values := r.srv.EchoAuthValues()
			require.Len(t, values, 3, "one retry")
			assert.Equal(t, values[0], values[1])
			assert.True(t, strings.HasPrefix(values[2], "Bearer "))
			assert.NotEqual(t, values[1], values[2])

			r.tokens.RevokeAll()
			rs, err := echo.Repeat(ctx(t), req("r"))
			require.NoError(t, err)
			got, err = recvAll(rs)
			require.NoError(t, err)
			assert.Equal(t, []string{"r", "r", "r"}, got)
			require.NoError(t, rs.Close())

			r.tokens.RevokeAll()
			cs := echo.Collect(ctx(t))
			for _, v := range []string{"x", "y"} {
				if err := cs.Send(&flyte2pb.EchoRequest{Value: v}); err != nil {
					require.ErrorIs(t, err, io.EOF)
				}
			}
			resp, err := cs.CloseAndReceive()
			require.NoError(t, err)
			assert.Equal(t, "x,y", resp.Msg.GetValue())

			assert.Equal(t, int64(4), r.tokens.Issued(), "one token per rejected stream")
			assert.Equal(t, int64(7), r.srv.EchoCalls())
		})
	}
}

// Headers the caller set on the stream go out again on the retry.
func TestStreamRetryKeepsRequestHeaders(t *testing.T) {
	r := newRig(t, rigConfig{})
	echo := r.echo(t, nil)
	s := echo.Chat(ctx(t))
	s.RequestHeader().Set("X-Flyte-Project", "demo")
	require.NoError(t, s.Send(&flyte2pb.EchoRequest{Value: "a"}))
	require.NoError(t, s.CloseRequest())
	m, err := s.Receive()
	require.NoError(t, err)
	assert.Equal(t, "a", m.GetValue())
	require.NoError(t, s.CloseResponse())
	assert.Equal(t, "demo", r.srv.LastEchoHeader().Get("X-Flyte-Project"))
	assert.Len(t, r.srv.LastEchoHeader().Values("Authorization"), 1)
}

// A stream that has received a message is never retried.
func TestStreamNoRetryAfterResponse(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
			echo := r.echo(t, p.opts)
			r.srv.SetStreamFailAfter(1)

			rs, err := echo.Repeat(ctx(t), req("r"))
			require.NoError(t, err)
			got, err := recvAll(rs)
			assert.Equal(t, []string{"r"}, got)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
			require.NoError(t, rs.Close())

			got, err = chat(t, echo, "a", "b")
			assert.Equal(t, []string{"a"}, got)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))

			assert.Equal(t, int64(2), r.srv.EchoCalls(), "no retry")
			assert.Equal(t, int64(1), r.tokens.Requests(), "no refresh")
		})
	}
}

// A rejected stream is retried once, not more.
func TestStreamRetryOnce(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
			echo := r.echo(t, p.opts)
			r.srv.SetRejectAll(true)
			_, err := chat(t, echo, "a")
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
			assert.Equal(t, int64(2), r.srv.EchoCalls())
		})
	}
}

// Past the replay bounds a rejected stream is not retried: its error is
// returned.
func TestStreamReplayBounds(t *testing.T) {
	big := strings.Repeat("b", 40<<10) // two of them pass the 64 KiB bound
	for name, c := range map[string]struct {
		opts []interceptor.Option
		msgs []string
	}{
		"count": {[]interceptor.Option{interceptor.WithMaxReplay(1)}, []string{"aaa", "bbb"}},
		"bytes": {nil, []string{big, big}},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
			echo := r.echo(t, nil, c.opts...)
			r.tokens.RevokeAll()
			_, err := chat(t, echo, c.msgs...)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
			assert.Equal(t, int64(1), r.srv.EchoCalls(), "not retried")

			// Within the bound the retry happens.
			got, err := chat(t, echo, "a")
			require.NoError(t, err)
			assert.Equal(t, []string{"a"}, got)
		})
	}
}

// Concurrent streams rejected together cause one token request.
func TestStreamStormOneRefresh(t *testing.T) {
	r := newRig(t, rigConfig{plaintext: true})
	require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
	echo := r.echo(t, nil)
	r.tokens.RevokeAll()
	r.tokens.ResetCounters()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			got, err := chat(t, echo, "m")
			if err == nil && len(got) != 1 {
				err = errors.New("lost or duplicated message")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), r.tokens.Requests())
}

// The caller's context bounds a stream's refresh; the stream ends with the
// context's code.
func TestStreamCallerDeadline(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			r := newRig(t, rigConfig{})
			require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
			echo := r.echo(t, p.opts)
			r.tokens.RevokeAll()
			r.tokens.SetFault(testserver.FaultHang())
			before := r.tokens.Requests()
			c, cancel := context.WithCancel(ctx(t))
			defer cancel()
			go func() {
				// Cancel once the rejected stream's refresh waits on the
				// hanging token endpoint.
				for r.tokens.Requests() == before && c.Err() == nil {
					waitABit(c)
				}
				cancel()
			}()
			s := echo.Chat(c)
			require.NoError(t, s.Send(&flyte2pb.EchoRequest{Value: "a"}))
			require.NoError(t, s.CloseRequest())
			_, err := s.Receive()
			require.Error(t, err)
			assert.Equal(t, connect.CodeCanceled, connect.CodeOf(err), "%v", err)
			_ = s.CloseResponse()
			assert.Equal(t, int64(1), r.srv.EchoCalls(), "not retried")
		})
	}
}

// A stream to plain HTTP on a host that is not loopback carries no token
// without the opt-in, and its rejection says why.
func TestStreamNoTokenOverPlainHTTP(t *testing.T) {
	r := newRig(t, rigConfig{plaintext: true})
	require.NoError(t, r.auth.RefreshCredentials(ctx(t)))
	hc := redirectDialer(r.srv.Addr())
	t.Cleanup(hc.CloseIdleConnections)
	const base = "http://flyte.example"
	ic, err := connectauth.NewInterceptor(r.auth, base)
	require.NoError(t, err)
	echo := flyte2pbconnect.NewEchoServiceClient(hc, base, connect.WithInterceptors(ic))
	_, err = chat(t, echo, "a")
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	assert.Contains(t, err.Error(), "no token was sent")
	assert.Equal(t, []string{""}, r.srv.EchoAuthValues())
}
