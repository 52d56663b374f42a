package interceptor

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/nilcheck"
)

// maxReplayBytes bounds the bytes a replay sends: the initial HTTP/2 stream
// window, which the new stream can always take without waiting for the
// server to read (so a replay never waits on answers nobody reads).
// Each message counts as its encoded size plus gRPC's 5-byte prefix.
const maxReplayBytes = 65535

// StreamClientInterceptor returns an interceptor that attaches a's
// credentials to every stream and, when the stream fails with a refresh code
// before any response message arrived, refreshes them, opens the stream
// again and replays what the caller had sent. It is safe for concurrent use.
// With a nil a (or an a holding a nil pointer), every stream fails with
// codes.Internal.
func StreamClientInterceptor(a authenticator.Authenticator, opts ...Option) grpc.StreamClientInterceptor {
	if nilcheck.Nil(a) {
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
		at := &s.firstAttempt
		for last := false; ; last = true {
			err := s.open(at)
			if err == nil {
				break
			}
			retry, err := x.afterAttempt(ctx, method, at.at, err, last)
			if !retry {
				return nil, err
			}
			s.canRetry = false // the retry is this one
			at = new(streamAttempt)
		}
		s.cur.Store(at)
		s.mu.Lock() // no other goroutine has s yet; the lock documents the rule
		s.settleLocked()
		s.mu.Unlock()
		return s, nil
	}
}

// streamAttempt is one stream opened for a call.
type streamAttempt struct {
	cs    grpc.ClientStream
	at    attempt
	creds callCreds // storage for at.creds
}

// retryStream is the ClientStream handed to the caller. It forwards to the
// attempt that serves the call and replaces it at most once, replaying the
// messages sent so far.
//
// gRPC allows one goroutine sending (SendMsg, CloseSend), one receiving
// (RecvMsg), and Header, Trailer and Context from any goroutine. Here:
//   - Context and Trailer read the current attempt without waiting.
//   - Only the holder of the receive role calls RecvMsg on an attempt: the
//     caller's RecvMsg, or Header when the attempt ended before its header
//     and no one is receiving (that attempt holds no message, only its
//     status). Whoever holds the role when the attempt turns out rejected
//     makes the retry (refresh, open, replay); others wait for it on a
//     channel, never on a lock, and stop waiting when the caller's context
//     ends.
//   - SendMsg and CloseSend wait while a retry replays, so that what the
//     caller sends next follows the replay on the new attempt.
//
// Once no retry can happen any more (a response arrived, the retry was made,
// or the replay bound was passed) the stream is settled: the attempt never
// changes again and the methods forward to it without the lock.
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

	cur          atomic.Pointer[streamAttempt] // the attempt serving the call
	settled      atomic.Bool                   // set, after cur and pending are final, once no retry can happen
	acked        atomic.Bool                   // the authenticator was told the token was accepted
	firstAttempt streamAttempt

	mu        sync.Mutex // guards the fields below; never held across a call that may block
	sent      []any      // messages sent, kept for a replay while canRetry
	sentBytes int        // their size on the wire
	first     [1]any     // sent's storage for a stream that sends one message
	closed    bool       // CloseSend was called
	canRetry  bool       // no retry yet, no response yet, sent within bound
	receiving bool       // the receive role is taken
	retrying  bool       // the receive role's holder is retrying
	changed   chan struct{}
	pending   error // why the call ended, when a retry failed
}

func (s *retryStream) open(a *streamAttempt) error {
	opts, at, err := s.x.attach(s.ctx, s.callOpts, &a.creds)
	if err != nil {
		return err
	}
	cs, err := s.streamer(s.ctx, s.desc, s.cc, s.method, opts...)
	a.cs, a.at = cs, at
	return err
}

// settleLocked publishes that no retry can happen any more, if so. It
// waits for the holder of the receive role to give it up, so that once
// settled no one but the caller's RecvMsg reads from the attempt.
func (s *retryStream) settleLocked() {
	if !s.canRetry && !s.receiving && !s.retrying && !s.settled.Load() {
		s.sent = nil
		s.settled.Store(true)
		s.broadcastLocked()
	}
}

// waitLocked waits, with s.mu released, until the stream's state changes;
// false when the caller's context ended first.
func (s *retryStream) waitLocked() bool {
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	ch := s.changed
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *retryStream) broadcastLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// keepLocked keeps m for a replay, or ends the chance of a retry if m
// passes the bounds: WithMaxReplay messages and maxReplayBytes. A stream
// whose client sends one message keeps it whatever the bounds.
func (s *retryStream) keepLocked(m any) {
	if !s.desc.ClientStreams {
		if len(s.sent) == 0 {
			s.sent = append(s.sent, m)
		} else {
			s.canRetry = false
		}
		return
	}
	size, ok := wireSize(m)
	if !ok || len(s.sent) >= s.x.o.maxReplay || s.sentBytes+size > maxReplayBytes {
		s.canRetry = false
		return
	}
	s.sent = append(s.sent, m)
	s.sentBytes += size
}

// wireSize is what m takes on the wire before compression, when known: a
// protobuf message's encoded size plus gRPC's message prefix.
func wireSize(m any) (int, bool) {
	switch m := m.(type) {
	case proto.Message:
		return proto.Size(m) + 5, true
	case protoadapt.MessageV1:
		return proto.Size(protoadapt.MessageV2Of(m)) + 5, true
	}
	return 0, false
}

// ack tells the authenticator, once, that the attempt's token was accepted.
func (s *retryStream) ack(a *streamAttempt) {
	if !s.acked.Load() {
		s.acked.Store(true)
		s.x.accepted(a.at)
	}
}

// SendMsg sends m on the current attempt and keeps it for a replay while a
// retry is possible. When the attempt has already ended (io.EOF) and a retry
// is still possible, m is kept and nil returned: RecvMsg then learns why the
// attempt ended and, if it was a rejection, replays m on the new one.
func (s *retryStream) SendMsg(m any) error {
	if s.settled.Load() {
		return s.cur.Load().cs.SendMsg(m)
	}
	s.mu.Lock()
	for s.retrying {
		if !s.waitLocked() {
			s.mu.Unlock()
			return io.EOF // RecvMsg says why
		}
	}
	if s.canRetry {
		s.keepLocked(m)
	}
	a, kept := s.cur.Load(), s.canRetry
	s.settleLocked()
	s.mu.Unlock()
	err := a.cs.SendMsg(m)
	if kept && errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// CloseSend closes the sending side of the current attempt, and of the new
// one should the call be retried.
func (s *retryStream) CloseSend() error {
	if s.settled.Load() {
		return s.cur.Load().cs.CloseSend()
	}
	s.mu.Lock()
	for s.retrying {
		if !s.waitLocked() {
			s.mu.Unlock()
			return nil // as gRPC's CloseSend, which never fails
		}
	}
	s.closed = true
	a := s.cur.Load()
	s.mu.Unlock()
	return a.cs.CloseSend()
}

// RecvMsg receives from the current attempt. If it fails with a refresh
// code before any response arrived, the call is retried once on a new
// attempt and the message received from there.
func (s *retryStream) RecvMsg(m any) error {
	for {
		if s.settled.Load() {
			if s.pending != nil {
				return s.pending
			}
			a := s.cur.Load()
			err := a.cs.RecvMsg(m)
			if err == nil || errors.Is(err, io.EOF) {
				s.ack(a)
				return err
			}
			_, err = s.x.afterAttempt(s.ctx, s.method, a.at, err, true)
			return err
		}
		s.mu.Lock()
		for s.receiving && !s.settled.Load() {
			if !s.waitLocked() {
				s.mu.Unlock()
				return status.FromContextError(s.ctx.Err()).Err()
			}
		}
		if s.settled.Load() {
			s.mu.Unlock()
			continue
		}
		s.receiving = true
		a := s.cur.Load()
		s.mu.Unlock()

		err := a.cs.RecvMsg(m)
		if err == nil {
			s.mu.Lock()
			s.receiving, s.canRetry = false, false
			s.settleLocked()
			s.broadcastLocked()
			s.mu.Unlock()
			s.ack(a)
			return nil
		}
		if retried, err := s.afterRecvErr(a, err); !retried {
			return err
		}
	}
}

// afterRecvErr handles the end of attempt a, learnt by the holder of the
// receive role: it retries the call if err calls for it and a retry is
// still possible, and gives up the role. It returns true when the call now
// runs on a new attempt, else the error for the caller.
func (s *retryStream) afterRecvErr(a *streamAttempt, err error) (retried bool, _ error) {
	s.mu.Lock()
	if errors.Is(err, io.EOF) || !s.canRetry {
		s.receiving, s.canRetry = false, false
		s.settleLocked()
		s.broadcastLocked()
		s.mu.Unlock()
		if errors.Is(err, io.EOF) {
			s.ack(a)
			return false, err
		}
		_, err = s.x.afterAttempt(s.ctx, s.method, a.at, err, true)
		return false, err
	}
	s.canRetry, s.retrying = false, true
	sent, closed := s.sent, s.closed
	s.sent = nil
	s.mu.Unlock()

	b, err := s.retry(a, err, sent, closed)

	s.mu.Lock()
	s.receiving, s.retrying = false, false
	if err != nil {
		s.pending = err
	} else {
		s.cur.Store(b)
	}
	s.settleLocked()
	s.broadcastLocked()
	s.mu.Unlock()
	return err == nil, err
}

// retry decides whether attempt a, which ended with err, is retried and if
// so opens the new attempt and replays what was sent. No lock is held.
func (s *retryStream) retry(a *streamAttempt, err error, sent []any, closed bool) (*streamAttempt, error) {
	retry, err := s.x.afterAttempt(s.ctx, s.method, a.at, err, false)
	if !retry {
		return nil, err
	}
	b := new(streamAttempt)
	if err := s.open(b); err != nil {
		_, err = s.x.afterAttempt(s.ctx, s.method, b.at, err, true)
		return nil, err
	}
	for _, m := range sent {
		if err := b.cs.SendMsg(m); err != nil {
			break // the new attempt ended too; its RecvMsg says why
		}
	}
	if closed {
		_ = b.cs.CloseSend()
	}
	return b, nil
}

// Header returns the header of the attempt that serves the call. An
// attempt that ended before sending a header is retried if it was
// rejected, by whoever holds the receive role.
func (s *retryStream) Header() (metadata.MD, error) {
	for {
		a := s.cur.Load()
		md, err := a.cs.Header()
		if md != nil || err != nil {
			return md, err
		}
		if s.settled.Load() && s.cur.Load() == a {
			return nil, nil // the call's last attempt ended; RecvMsg says why
		}
		// gRPC reports an attempt that ended before its header as (nil,
		// nil) and keeps the status for RecvMsg.
		s.mu.Lock()
		if s.cur.Load() != a || s.settled.Load() {
			s.mu.Unlock()
			continue
		}
		if s.receiving {
			// The receiver learns the status and retries if it must.
			ok := s.waitLocked()
			s.mu.Unlock()
			if !ok {
				return nil, nil // RecvMsg says why
			}
			continue
		}
		// No one receives: ask for the status here. The attempt ended
		// before its header, so it holds no message to consume.
		s.receiving = true
		s.mu.Unlock()
		serr := a.cs.RecvMsg(new(emptypb.Empty))
		if serr == nil {
			serr = io.EOF // cannot happen: no header, no message
		}
		if retried, _ := s.afterRecvErr(a, serr); !retried {
			return nil, nil // RecvMsg says why
		}
	}
}

// Trailer returns the trailer of the attempt that serves the call.
func (s *retryStream) Trailer() metadata.MD { return s.cur.Load().cs.Trailer() }

// Context returns the context of the attempt that serves the call. It never
// waits. Before and during a retry that is the rejected attempt's, which is
// done once the attempt ended: a caller that watches Context().Done() across
// a retry should take Context again after Header or the first message.
func (s *retryStream) Context() context.Context { return s.cur.Load().cs.Context() }
