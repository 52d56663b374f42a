package interceptor_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestStreamRejectedAfterResponseIsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(e *env) ([]string, error)
		want []string
	}{
		{"server-stream", func(e *env) ([]string, error) { return e.echo.ServerStream(testContext(t), "hi") }, []string{"hi-0"}},
		{"bidi", func(e *env) ([]string, error) { return e.echo.Bidi(testContext(t), []string{"a", "b", "c"}) }, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.prime(t)
			e.admin.SetStreamFailAfter(1)

			got, err := tc.call(e)
			assert.Equal(t, tc.want, got, "what arrived before the rejection, once")
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			var re *interceptor.RefreshError
			assert.False(t, errors.As(err, &re))
			assert.EqualValues(t, 1, e.admin.EchoCalls())
			assert.Zero(t, e.tokens.Requests())
		})
	}
}

func values(n int) []string {
	v := make([]string, n)
	for i := range v {
		v[i] = fmt.Sprintf("m%02d", i)
	}
	return v
}

// sendAll sends every value on stream. A send that finds the stream ended
// (io.EOF) stops the sending; RecvMsg then reports why.
func sendAll(t *testing.T, stream grpc.ClientStream, vs []string) {
	t.Helper()
	for _, v := range vs {
		if err := stream.SendMsg(wrapperspb.String(v)); err != nil {
			require.ErrorIs(t, err, io.EOF)
			return
		}
	}
}

func TestBidiReplaysSentMessagesInOrderOnce(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.prime(t)
	e.tokens.RevokeAll()

	want := values(10)
	stream, err := e.echo.OpenBidi(testContext(t))
	require.NoError(t, err)
	sendAll(t, stream, want)
	require.NoError(t, stream.CloseSend())
	got, err := testserver.RecvAll(stream)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.EqualValues(t, 2, e.admin.EchoCalls())
	assert.EqualValues(t, 1, e.tokens.Requests())
}

func TestClientStreamReplaysSentMessagesInOrderOnce(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.prime(t)
	e.tokens.RevokeAll()

	want := values(10)
	got, err := e.echo.ClientStream(testContext(t), want)
	require.NoError(t, err)
	assert.Equal(t, strings.Join(want, ","), got)
	assert.EqualValues(t, 2, e.admin.EchoCalls())
	assert.EqualValues(t, 1, e.tokens.Requests())
}

func TestMaxReplayBound(t *testing.T) {
	const bound = 3
	for _, tc := range []struct {
		name string
		sent int
		ok   bool
	}{
		{"at the bound", bound, true},
		{"past the bound", bound + 1, false},
	} {
		for _, method := range []string{"client-stream", "bidi"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				e := newEnv(t, envConfig{opts: []interceptor.Option{interceptor.WithMaxReplay(bound)}})
				e.prime(t)
				e.tokens.RevokeAll()

				open := e.echo.OpenBidi
				if method == "client-stream" {
					open = e.echo.OpenClientStream
				}
				stream, err := open(testContext(t))
				require.NoError(t, err)
				want := values(tc.sent)
				sendAll(t, stream, want)
				require.NoError(t, stream.CloseSend())
				got, err := testserver.RecvAll(stream)
				if !tc.ok {
					assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
					assert.Empty(t, got)
					assert.EqualValues(t, 1, e.admin.EchoCalls())
					assert.Zero(t, e.tokens.Requests())
					return
				}
				require.NoError(t, err)
				if method == "client-stream" {
					want = []string{strings.Join(want, ",")}
				}
				assert.Equal(t, want, got)
				assert.EqualValues(t, 2, e.admin.EchoCalls())
				assert.EqualValues(t, 1, e.tokens.Requests())
			})
		}
	}
}

func TestMaxReplayZero(t *testing.T) {
	// Without replay, a stream that has sent nothing is retried, one that
	// has sent a message is not; a server stream's single request is
	// always kept.
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: []interceptor.Option{interceptor.WithMaxReplay(0)}})
			e.prime(t)
			e.tokens.RevokeAll()
			got, err := sh.call(testContext(t), e.echo)
			if sh.name == "client-stream" || sh.name == "bidi" {
				assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
				assert.EqualValues(t, 1, e.admin.EchoCalls())
				assert.Zero(t, e.tokens.Requests())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, sh.want, got)
			assert.EqualValues(t, 2, e.admin.EchoCalls())
		})
	}

	t.Run("bidi that sent nothing", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: []interceptor.Option{interceptor.WithMaxReplay(0)}})
		e.prime(t)
		e.tokens.RevokeAll()
		stream, err := e.echo.OpenBidi(testContext(t))
		require.NoError(t, err)

		// Header finds the rejection and retries; the new stream's header
		// comes with the echo of the first message, sent on the new stream.
		type header struct {
			md  metadata.MD
			err error
		}
		hc := make(chan header, 1)
		go func() {
			md, err := stream.Header()
			hc <- header{md, err}
		}()
		eventually(t, func() bool { return e.admin.EchoCalls() == 2 }, "the stream was opened again")
		require.NoError(t, stream.SendMsg(wrapperspb.String("a")))
		h := <-hc
		require.NoError(t, h.err)
		assert.NotNil(t, h.md)
		require.NoError(t, stream.CloseSend())
		got, err := testserver.RecvAll(stream)
		require.NoError(t, err)
		assert.Equal(t, []string{"a"}, got)
		assert.EqualValues(t, 1, e.tokens.Requests())
	})
}

// openStream opens a stream of the given shape and sends vs (the server
// stream takes vs[0] as its request), then closes the sending side.
func openStream(t *testing.T, e *env, shape string, vs []string) grpc.ClientStream {
	t.Helper()
	ctx := testContext(t)
	if shape == "server-stream" {
		stream, err := e.echo.OpenServerStream(ctx, vs[0])
		require.NoError(t, err)
		return stream
	}
	var (
		stream grpc.ClientStream
		err    error
	)
	if shape == "client-stream" {
		stream, err = e.echo.OpenClientStream(ctx)
	} else {
		stream, err = e.echo.OpenBidi(ctx)
	}
	require.NoError(t, err)
	sendAll(t, stream, vs)
	require.NoError(t, stream.CloseSend())
	return stream
}

var streamShapes = []struct {
	name string
	sent []string
	want []string
}{
	{"server-stream", []string{"x"}, []string{"x-0", "x-1", "x-2"}},
	{"client-stream", []string{"a", "b"}, []string{"a,b"}},
	{"bidi", []string{"a", "b"}, []string{"a", "b"}},
}

func TestHeaderRetriesRejectedStream(t *testing.T) {
	for _, sh := range streamShapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.prime(t)
			e.tokens.RevokeAll()

			stream := openStream(t, e, sh.name, sh.sent)
			md, err := stream.Header()
			require.NoError(t, err)
			assert.NotNil(t, md, "the header of the stream that serves the call")
			assert.EqualValues(t, 2, e.admin.EchoCalls(), "the retry happened in Header")
			assert.EqualValues(t, 1, e.tokens.Requests())
			// The rejected stream is finished and its context done; the
			// one serving the call is live.
			assert.NoError(t, stream.Context().Err())

			got, err := testserver.RecvAll(stream)
			require.NoError(t, err)
			assert.Equal(t, sh.want, got)
			assert.NotNil(t, stream.Trailer())
			assert.EqualValues(t, 2, e.admin.EchoCalls())
		})
	}
}

func TestHeaderOnAlwaysRejectingServer(t *testing.T) {
	for _, sh := range streamShapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.prime(t)
			e.admin.SetRejectAll(true)

			stream := openStream(t, e, sh.name, sh.sent)
			md, err := stream.Header()
			assert.NoError(t, err, "as gRPC does, Header leaves the status to RecvMsg")
			assert.Nil(t, md)
			got, err := testserver.RecvAll(stream)
			assert.Empty(t, got)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			assert.EqualValues(t, 2, e.admin.EchoCalls())
			assert.EqualValues(t, 1, e.tokens.Requests())
		})
	}
}

func TestHeaderWhenRefreshFails(t *testing.T) {
	for _, sh := range streamShapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.prime(t)
			e.tokens.RevokeAll()
			e.tokens.SetFault(testserver.FaultOAuthError(http.StatusUnauthorized, "invalid_client", "bad secret"))

			stream := openStream(t, e, sh.name, sh.sent)
			md, err := stream.Header()
			assert.NoError(t, err)
			assert.Nil(t, md)
			// RecvMsg reports what Header found, every time it is asked.
			for range 2 {
				_, err = testserver.RecvAll(stream)
				assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
				var re *interceptor.RefreshError
				assert.ErrorAs(t, err, &re)
				assert.Contains(t, err.Error(), "invalid_client")
			}
			assert.EqualValues(t, 1, e.admin.EchoCalls())
			assert.EqualValues(t, 1, e.tokens.Requests())
		})
	}
}
