package interceptor

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth/authenticator"
)

// StreamClientInterceptor returns an interceptor that attaches a's
// credentials to every stream and, when the stream fails with a refresh code
// before any response message arrived, refreshes them, opens the stream
// again and replays what the caller had sent. It is safe for concurrent use.
// With a nil a (or an a holding a nil pointer), every stream fails with
// codes.Internal.
func StreamClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.StreamClientInterceptor {
	if isNil(a) {
		return func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, grpc.Streamer, ...grpc.CallOption) (grpc.ClientStream, error) {
			return nil, missingAuthenticator
		}
	}
	x := newAuth(a, opts)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		if x.o.skip[method] {
			return streamer(ctx, desc, cc, method, callOpts...)
		}
		s := &retryStream{x: x, ctx: ctx, desc: desc, cc: cc, method: method, streamer: streamer, callOpts: callOpts, canRetry: true}
		s.sent = s.first[:0]
		cs, at, err := s.open()
		if err != nil {
			retry, err := x.afterFailure(ctx, method, at, err)
			if !retry {
				return nil, err
			}
			if cs, at, err = s.open(); err != nil {
				return nil, x.afterRetry(method, at, err)
			}
			s.canRetry, s.sent = false, nil
		}
		s.cs, s.at = cs, at
		s.settleLocked() // no other goroutine has s yet
		return s, nil
	}
}

// retryStream is the ClientStream handed to the caller. It forwards to the
// current underlying stream and replaces it at most once, replaying the
// messages sent so far. Once no retry can happen any more (a response
// arrived, the retry was made, or the replay bound was passed) the stream is
// settled: cs never changes again, and the methods forward to it without
// taking the lock.
type retryStream struct {
	x *auth
	// ctx is the caller's context for the call, kept to open the stream
	// again on a retry, as gRPC keeps it in its own streams.
	ctx      context.Context
	desc     *grpc.StreamDesc
	cc       *grpc.ClientConn
	method   string
	streamer grpc.Streamer
	callOpts []grpc.CallOption

	// settled is set, after the last write to the fields below, once no
	// retry can happen; from then on cs and pending are read without mu.
	settled atomic.Bool

	mu       sync.Mutex // guards the fields below until settled; held during a retry
	cs       grpc.ClientStream
	at       attempt
	sent     []any  // messages sent, kept for a replay while canRetry
	first    [1]any // sent's storage for a stream that sends one message
	closed   bool   // CloseSend was called
	canRetry bool   // no retry yet, no response yet, sent within bound
	pending  error  // the failure Header found, for RecvMsg to return
}

// settleLocked publishes that no retry can happen any more, if so. s.mu is
// held, and every field has its final value when canRetry is false.
func (s *retryStream) settleLocked() {
	if !s.canRetry {
		s.sent = nil
		s.settled.Store(true)
	}
}

func (s *retryStream) open() (grpc.ClientStream, attempt, error) {
	ctx, opts, at := s.x.attach(s.ctx, s.cc, s.callOpts)
	cs, err := s.streamer(ctx, s.desc, s.cc, s.method, opts...)
	return cs, at, err
}

func (s *retryStream) current() grpc.ClientStream {
	if s.settled.Load() {
		return s.cs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cs
}

// replayLimit is how many sent messages are kept for a replay. A stream
// whose client sends one message keeps it whatever the bound.
func (s *retryStream) replayLimit() int {
	if !s.desc.ClientStreams {
		return 1
	}
	return s.x.o.maxReplay
}

// SendMsg sends m on the current stream and keeps it for a replay while a
// retry is possible. When the stream has already ended (io.EOF) and a retry
// is still possible, m is kept and nil returned: RecvMsg then learns why the
// stream ended and, if it was a rejection, replays m on the new stream.
func (s *retryStream) SendMsg(m any) error {
	if s.settled.Load() {
		return s.cs.SendMsg(m)
	}
	s.mu.Lock()
	if s.canRetry {
		if len(s.sent) < s.replayLimit() {
			s.sent = append(s.sent, m)
		} else {
			s.canRetry = false
		}
	}
	cs, kept := s.cs, s.canRetry
	s.settleLocked()
	s.mu.Unlock()
	err := cs.SendMsg(m)
	if errors.Is(err, io.EOF) && kept {
		return nil
	}
	return err
}

// CloseSend closes the sending side of the current stream, and of the new
// one should the call be retried.
func (s *retryStream) CloseSend() error {
	if s.settled.Load() {
		return s.cs.CloseSend()
	}
	s.mu.Lock()
	s.closed = true
	cs := s.cs
	s.mu.Unlock()
	return cs.CloseSend()
}

// RecvMsg receives from the current stream. If the stream fails with a
// refresh code before any response arrived, the call is retried once on a new
// stream and the message received from there.
func (s *retryStream) RecvMsg(m any) error {
	for {
		if s.settled.Load() {
			if s.pending != nil {
				return s.pending
			}
			if err := s.cs.RecvMsg(m); err != nil {
				return s.x.afterRetry(s.method, s.at, err)
			}
			return nil
		}
		s.mu.Lock()
		cs, pending := s.cs, s.pending
		s.mu.Unlock()
		if pending != nil {
			return pending
		}
		err := cs.RecvMsg(m)
		s.mu.Lock()
		if err == nil {
			s.canRetry = false
			at := s.at
			s.settleLocked()
			s.mu.Unlock()
			s.x.accepted(at)
			return nil
		}
		if cs != s.cs { // another goroutine retried meanwhile
			s.mu.Unlock()
			continue
		}
		err = s.retryLocked(err)
		s.settleLocked()
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// Header returns the header of the stream that serves the call. A stream
// that ended before sending a header is retried here if it was rejected.
func (s *retryStream) Header() (metadata.MD, error) {
	for {
		cs := s.current()
		md, err := cs.Header()
		if md != nil || err != nil {
			return md, err
		}
		// gRPC reports a stream that ended before its header as (nil, nil)
		// and keeps the status for RecvMsg. Such a stream carries no message,
		// so asking RecvMsg for its status consumes nothing.
		s.mu.Lock()
		if cs != s.cs {
			s.mu.Unlock()
			continue
		}
		if !s.canRetry {
			s.mu.Unlock()
			return nil, nil
		}
		serr := cs.RecvMsg(new(emptypb.Empty))
		if serr == nil || errors.Is(serr, io.EOF) {
			s.mu.Unlock()
			return nil, nil
		}
		if err = s.retryLocked(serr); err != nil {
			// Not retried: RecvMsg reports why.
			s.pending = err
			s.settleLocked()
			s.mu.Unlock()
			return nil, nil
		}
		s.settleLocked()
		s.mu.Unlock()
	}
}

// Trailer returns the trailer of the stream that serves the call.
func (s *retryStream) Trailer() metadata.MD { return s.current().Trailer() }

// Context returns the context of the stream that serves the call.
func (s *retryStream) Context() context.Context { return s.current().Context() }

// retryLocked opens the stream again after err, if err calls for it and a
// retry is still possible, and replays what was sent. It returns nil when the
// call now runs on the new stream, else the error for the caller. s.mu is
// held.
func (s *retryStream) retryLocked(err error) error {
	if errors.Is(err, io.EOF) {
		return err
	}
	if !s.canRetry {
		return s.x.afterRetry(s.method, s.at, err)
	}
	s.canRetry = false
	sent := s.sent
	s.sent = nil
	retry, err := s.x.afterFailure(s.ctx, s.method, s.at, err)
	if !retry {
		return err
	}
	cs, at, err := s.open()
	if err != nil {
		return err
	}
	for _, m := range sent {
		if err := cs.SendMsg(m); err != nil {
			// The new stream ended too; its RecvMsg reports why.
			break
		}
	}
	if s.closed {
		_ = cs.CloseSend()
	}
	s.cs, s.at = cs, at
	return nil
}
