package retry

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Attempt is one stream opened for a call: gRPC's ClientStream or
// connect-go's StreamingClientConn, seen through an adapter (a pointer).
type Attempt interface {
	comparable
	Send(m any) error
	CloseSend() error
	Recv(m any) error
}

// Dialect is what an adapter tells the engine about its protocol.
type Dialect[A Attempt] interface {
	// Open opens a new attempt of the call with the current credential
	// (Policy.Credential). With an error, the call ends with it (the
	// attempt's Carried may still say what was offered).
	Open(ctx context.Context) (A, Carried, error)
	// Code is the status code of an attempt's error.
	Code(err error) codes.Code
	// Fail is the error the caller gets when a refused attempt led to
	// outcome o (Withheld, RefreshFailed or ContextEnded); callErr is the
	// attempt's error, cause the refresh's, ctx the call's.
	Fail(ctx context.Context, o Outcome, callErr, cause error) error
}

// current is the attempt that serves the call.
type current[A Attempt] struct {
	a A
	c Carried
}

// Stream runs one streaming call across at most two attempts. An adapter
// embeds it, calls Start once, and forwards the caller's Send, CloseSend
// and Recv to it.
//
// A stream allows one goroutine sending (Send, CloseSend), one receiving
// (Recv), and header, trailer and context reads from any goroutine. Here:
//   - Current reads the attempt without waiting.
//   - Only the holder of the receive role calls Recv on an attempt: the
//     caller's Recv, or the adapter's header read when the attempt ended
//     before its header and no one is receiving (Probe). Whoever holds the
//     role when the attempt turns out refused makes the retry (refresh,
//     open, replay); others wait for it on a channel, never on a lock, and
//     stop waiting when the caller's context ends.
//   - Send and CloseSend wait while a retry replays, so that what the
//     caller sends next follows the replay on the new attempt.
//
// Once no retry can happen any more (a response arrived, the retry was made,
// or the replay bound was passed) the stream is settled: the attempt never
// changes again and the methods forward to it without the lock.
type Stream[A Attempt] struct {
	d      Dialect[A]
	p      *Policy
	ctx    context.Context // the caller's, kept to open the call again
	method string
	// oneRequest is set for a stream whose client sends one message: it
	// is kept whatever the bounds.
	oneRequest bool
	maxReplay  int

	cur     atomic.Pointer[current[A]]
	settled atomic.Bool // set, after cur and pending are final, once no retry can happen
	acked   atomic.Bool // the policy was told the credential was accepted
	first   current[A]

	mu        sync.Mutex // guards the fields below; never held across a call that may block
	sent      []any      // messages sent, kept for a replay while canRetry
	sentBytes int        // their size on the wire
	one       [1]any     // sent's storage for a stream that sends one message
	closed    bool       // CloseSend was called
	canRetry  bool       // no retry yet, no response yet, sent within bound
	receiving bool       // the receive role is taken
	retrying  bool       // the receive role's holder is retrying
	changed   chan struct{}
	pending   error // why the call ended, when a retry failed
}

// Start opens the call's first attempt, and a second one if the first is
// refused at once. maxReplay bounds the messages kept for a replay
// (besides MaxReplayBytes); oneRequest says the client sends one message.
func (s *Stream[A]) Start(ctx context.Context, d Dialect[A], p *Policy, method string, oneRequest bool, maxReplay int) error {
	s.d, s.p, s.ctx, s.method, s.oneRequest, s.maxReplay = d, p, ctx, method, oneRequest, maxReplay
	s.canRetry = true
	s.sent = s.one[:0]
	at := &s.first
	for retried := false; ; retried = true {
		a, c, err := d.Open(ctx)
		at.a, at.c = a, c
		if err == nil {
			break
		}
		if err = s.decide(at, err, retried); err != nil {
			return err
		}
		s.canRetry = false // the retry is this one
		at = new(current[A])
	}
	s.cur.Store(at)
	s.mu.Lock() // no other goroutine has s yet; the lock documents the rule
	s.settleLocked()
	s.mu.Unlock()
	return nil
}

// decide returns nil when the attempt at, which failed with err, is to be
// retried (the new credential is at hand), else the caller's error.
func (s *Stream[A]) decide(at *current[A], err error, retried bool) error {
	o, cause := s.p.Decide(s.ctx, s.method, at.c, s.d.Code(err), err, retried)
	switch o {
	case Retry:
		return nil
	case Return:
		return err
	}
	return s.d.Fail(s.ctx, o, err, cause)
}

// Current returns the attempt that serves the call. It never waits.
func (s *Stream[A]) Current() A { return s.cur.Load().a }

// Settled reports whether the attempt can no longer change.
func (s *Stream[A]) Settled() bool { return s.settled.Load() }

// settleLocked publishes that no retry can happen any more, if so. It
// waits for the holder of the receive role to give it up, so that once
// settled no one but the caller's Recv reads from the attempt.
func (s *Stream[A]) settleLocked() {
	if !s.canRetry && !s.receiving && !s.retrying && !s.settled.Load() {
		s.sent = nil
		s.settled.Store(true)
		s.broadcastLocked()
	}
}

// waitLocked waits, with s.mu released, until the stream's state changes;
// false when the caller's context ended first.
func (s *Stream[A]) waitLocked() bool {
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

func (s *Stream[A]) broadcastLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// keepLocked keeps m for a replay, or ends the chance of a retry if m
// passes the bounds.
func (s *Stream[A]) keepLocked(m any) {
	if s.oneRequest {
		if len(s.sent) == 0 {
			s.sent = append(s.sent, m)
		} else {
			s.canRetry = false
		}
		return
	}
	size, ok := wireSize(m)
	if !ok || len(s.sent) >= s.maxReplay || s.sentBytes+size > MaxReplayBytes {
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

// ack tells the policy, once, that the attempt's credential was accepted.
func (s *Stream[A]) ack(at *current[A]) {
	if !s.acked.Load() {
		s.acked.Store(true)
		s.p.Accepted(at.c)
	}
}

// Send sends m on the current attempt and keeps it for a replay while a
// retry is possible. When the attempt has already ended (io.EOF) and a
// retry is still possible, m is kept and nil returned: Recv then learns why
// the attempt ended and, if it was a refusal, replays m on the new one.
func (s *Stream[A]) Send(m any) error {
	if s.settled.Load() {
		return s.cur.Load().a.Send(m)
	}
	s.mu.Lock()
	for s.retrying {
		if !s.waitLocked() {
			s.mu.Unlock()
			return io.EOF // Recv says why
		}
	}
	if s.canRetry {
		s.keepLocked(m)
	}
	at, kept := s.cur.Load(), s.canRetry
	s.settleLocked()
	s.mu.Unlock()
	err := at.a.Send(m)
	if kept && errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// CloseSend closes the sending side of the current attempt, and of the new
// one should the call be retried.
func (s *Stream[A]) CloseSend() error {
	if s.settled.Load() {
		return s.cur.Load().a.CloseSend()
	}
	s.mu.Lock()
	for s.retrying {
		if !s.waitLocked() {
			s.mu.Unlock()
			return nil // as gRPC's CloseSend, which never fails
		}
	}
	s.closed = true
	at := s.cur.Load()
	s.mu.Unlock()
	return at.a.CloseSend()
}

// Recv receives from the current attempt. If it fails with a refusal
// before any response arrived, the call is retried once on a new attempt
// and the message received from there. ctxErr is the error for a caller
// whose context ended while it waited for another goroutine's retry.
func (s *Stream[A]) Recv(m any, ctxErr func(error) error) error {
	for {
		if s.settled.Load() {
			if s.pending != nil {
				return s.pending
			}
			at := s.cur.Load()
			err := at.a.Recv(m)
			if err == nil || errors.Is(err, io.EOF) {
				s.ack(at)
				return err
			}
			return s.decide(at, err, true)
		}
		s.mu.Lock()
		for s.receiving && !s.settled.Load() {
			if !s.waitLocked() {
				s.mu.Unlock()
				return ctxErr(s.ctx.Err())
			}
		}
		if s.settled.Load() {
			s.mu.Unlock()
			continue
		}
		s.receiving = true
		at := s.cur.Load()
		s.mu.Unlock()

		err := at.a.Recv(m)
		if err == nil {
			s.mu.Lock()
			s.receiving, s.canRetry = false, false
			s.settleLocked()
			s.broadcastLocked()
			s.mu.Unlock()
			s.ack(at)
			return nil
		}
		if retried, err := s.afterRecvErr(at, err); !retried {
			return err
		}
	}
}

// Probe is for an adapter whose header read found that attempt a ended
// before its header, a state in which it holds no message, only its
// status. It learns that status through Recv(probe) unless another
// goroutine is receiving (then it waits for that one), and retries the
// call if the attempt was refused. It returns true when the adapter should
// read the header again (of the attempt now serving the call), false when
// the call's last attempt ended: Recv says why.
func (s *Stream[A]) Probe(a A, probe any) bool {
	s.mu.Lock()
	at := s.cur.Load()
	if at.a != a || s.settled.Load() {
		s.mu.Unlock()
		return at.a != a
	}
	if s.receiving {
		// The receiver learns the status and retries if it must.
		ok := s.waitLocked()
		s.mu.Unlock()
		return ok
	}
	s.receiving = true
	s.mu.Unlock()
	err := at.a.Recv(probe)
	if err == nil {
		err = io.EOF // cannot happen: no header, no message
	}
	retried, _ := s.afterRecvErr(at, err)
	return retried
}

// afterRecvErr handles the end of attempt at, learnt by the holder of the
// receive role: it retries the call if err calls for it and a retry is
// still possible, and gives up the role. It returns true when the call now
// runs on a new attempt, else the error for the caller.
func (s *Stream[A]) afterRecvErr(at *current[A], err error) (retried bool, _ error) {
	s.mu.Lock()
	if errors.Is(err, io.EOF) || !s.canRetry {
		s.receiving, s.canRetry = false, false
		s.settleLocked()
		s.broadcastLocked()
		s.mu.Unlock()
		if errors.Is(err, io.EOF) {
			s.ack(at)
			return false, err
		}
		return false, s.decide(at, err, true)
	}
	s.canRetry, s.retrying = false, true
	sent, closed := s.sent, s.closed
	s.sent = nil
	s.mu.Unlock()

	next, err := s.retry(at, err, sent, closed)

	s.mu.Lock()
	s.receiving, s.retrying = false, false
	if err != nil {
		s.pending = err
	} else {
		s.cur.Store(next)
	}
	s.settleLocked()
	s.broadcastLocked()
	s.mu.Unlock()
	return err == nil, err
}

// retry decides whether attempt at, which ended with err, is retried and
// if so opens the new attempt and replays what was sent. No lock is held.
func (s *Stream[A]) retry(at *current[A], err error, sent []any, closed bool) (*current[A], error) {
	if err := s.decide(at, err, false); err != nil {
		return nil, err
	}
	next := new(current[A])
	a, c, err := s.d.Open(s.ctx)
	next.a, next.c = a, c
	if err != nil {
		return nil, s.decide(next, err, true)
	}
	for _, m := range sent {
		if err := a.Send(m); err != nil {
			break // the new attempt ended too; its Recv says why
		}
	}
	if closed {
		_ = a.CloseSend()
	}
	return next, nil
}
