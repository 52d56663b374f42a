package interceptor_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// streamDeadline bounds a stream that a bug could leave hanging, so that the
// test fails instead. Correct code ends each stream in milliseconds.
const streamDeadline = 10 * time.Second

func TestRejectedBidiWithLargeMessagesDoesNotHang(t *testing.T) {
	// 40 messages of 32 KiB: far under the replay bound of 64 messages, far
	// over what HTTP/2 flow control takes without the server's answers
	// being read. Replaying them all from inside RecvMsg, where no one reads
	// the answers, would stop the stream until its deadline.
	const n, size = 40, 32 << 10
	pad := strings.Repeat("x", size)
	for _, mode := range []string{"receive after sending", "receive while sending"} {
		t.Run(mode, func(t *testing.T) {
			e := newFakeEnv(t, envConfig{})
			e.prime(t)
			e.auth.revoke()
			ctx, cancel := context.WithTimeout(t.Context(), streamDeadline)
			defer cancel()
			stream, err := e.echo.OpenBidi(ctx)
			require.NoError(t, err)

			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := range n {
					if stream.SendMsg(wrapperspb.String(fmt.Sprintf("%02d", i)+pad)) != nil {
						return // RecvMsg says why
					}
				}
				_ = stream.CloseSend()
			}()
			if mode == "receive after sending" {
				<-sent
			}
			got, err := testserver.RecvAll(stream)
			<-sent
			require.NotEqual(t, codes.DeadlineExceeded, status.Code(err), "the stream hung until its deadline")
			if err != nil {
				// Past the replay bound: the rejection, not a retry.
				assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
				assert.Empty(t, got)
				return
			}
			// Rejected early enough to replay within the bound: every
			// message once, in order.
			require.Len(t, got, n)
			for i, v := range got {
				assert.Equal(t, fmt.Sprintf("%02d", i), v[:2])
			}
		})
	}
}

func TestReplayBoundedByBytes(t *testing.T) {
	// Two messages that fit the replay's 64 KiB are replayed; one more
	// that does not ends the chance of a retry, and the rejection is
	// returned.
	for _, tc := range []struct {
		name  string
		sizes []int
		ok    bool
	}{
		{"within 64 KiB", []int{30 << 10, 30 << 10}, true},
		{"past 64 KiB", []int{30 << 10, 30 << 10, 5 << 10}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t, envConfig{})
			e.prime(t)
			e.auth.revoke()
			ctx, cancel := context.WithTimeout(t.Context(), streamDeadline)
			defer cancel()
			stream, err := e.echo.OpenClientStream(ctx)
			require.NoError(t, err)
			var want []string
			for i, size := range tc.sizes {
				v := fmt.Sprintf("%d", i) + strings.Repeat("y", size)
				want = append(want, v)
				if err := stream.SendMsg(wrapperspb.String(v)); err != nil {
					require.ErrorIs(t, err, io.EOF)
					break
				}
			}
			require.NoError(t, stream.CloseSend())
			got, err := testserver.RecvAll(stream)
			if !tc.ok {
				assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
				assert.Zero(t, e.auth.refreshes.Load())
				assert.EqualValues(t, 1, e.admin.EchoCalls())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{strings.Join(want, ",")}, got)
			assert.EqualValues(t, 2, e.admin.EchoCalls())
		})
	}
}

// within runs f in a goroutine and fails the test if it has not returned
// within streamDeadline.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(streamDeadline):
		t.Fatalf("%s did not return", what)
	}
}

func TestStreamMethodsDuringRefresh(t *testing.T) {
	// The retry of a rejected bidi stream waits in a refresh that does not
	// end. Context answers at once; Header and SendMsg wait for the retry,
	// and return when the caller's context ends, as RecvMsg does, with the
	// context's code.
	e := newFakeEnv(t, envConfig{})
	e.prime(t)
	e.auth.revoke()
	release := e.auth.holdRefreshes()
	t.Cleanup(release)

	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	stream, err := e.echo.OpenBidi(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.SendMsg(wrapperspb.String("a")))
	recvErr := make(chan error, 1)
	go func() {
		_, err := testserver.RecvAll(stream)
		recvErr <- err
	}()
	eventually(t, func() bool { return e.auth.refreshes.Load() == 1 }, "the retry is refreshing")

	within(t, "Context during a refresh", func() { _ = stream.Context() })
	within(t, "Trailer during a refresh", func() { _ = stream.Trailer() })

	header := make(chan metadata.MD, 1)
	go func() {
		md, _ := stream.Header()
		header <- md
	}()
	sendErr := make(chan error, 1)
	go func() { sendErr <- stream.SendMsg(wrapperspb.String("b")) }()

	cancel()
	within(t, "the stream's methods after the context ended", func() {
		assert.Equal(t, codes.Canceled, status.Code(<-recvErr))
		assert.Nil(t, <-header)
		assert.ErrorIs(t, <-sendErr, io.EOF)
	})
}

func TestStreamFromThreeGoroutinesWithRevokedTokens(t *testing.T) {
	// gRPC lets one goroutine send, one receive, and any call Header and
	// Context. Each round revokes the token, so the first attempt is
	// rejected and the stream retried while the three run.
	const rounds = 300
	e := newFakeEnv(t, envConfig{})
	e.prime(t)
	want := []string{"a", "b", "c"}
	for round := range rounds {
		e.auth.revoke()
		ctx, cancel := context.WithTimeout(t.Context(), streamDeadline)
		stream, err := e.echo.OpenBidi(ctx)
		require.NoError(t, err, "round %d", round)

		var (
			wg      sync.WaitGroup
			got     []string
			recvErr error
			md      metadata.MD
		)
		wg.Go(func() {
			for _, v := range want {
				if stream.SendMsg(wrapperspb.String(v)) != nil {
					return
				}
			}
			_ = stream.CloseSend()
		})
		wg.Go(func() { got, recvErr = testserver.RecvAll(stream) })
		wg.Go(func() {
			md, _ = stream.Header()
			_ = stream.Context().Err()
		})
		// Old code hung here, its deadline ignored: fail instead.
		within(t, fmt.Sprintf("round %d", round), wg.Wait)
		cancel()
		require.NoError(t, recvErr, "round %d", round)
		require.Equal(t, want, got, "round %d: every message once, in order", round)
		require.NotNil(t, md, "round %d: the header of the attempt that served the call", round)
	}
	assert.EqualValues(t, rounds, e.auth.refreshes.Load())
}
