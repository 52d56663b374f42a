package connectauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
)

// WrapStreamingClient attaches the token to a client, server or bidi
// stream and, when the stream fails with a refresh code before any response
// message arrived, refreshes the token, opens the stream again with the
// same request headers and replays what the caller had sent (within the
// replay bounds). The retry happens in Receive; a caller that read
// ResponseHeader before it sees the failed attempt's header.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		if i.o.skip[spec.Procedure] {
			return next(ctx, spec)
		}
		conn := next(ctx, spec)
		s := &retryConn{i: i, ctx: ctx, spec: spec, next: next, cur: conn, canRetry: true}
		s.at = i.attach(ctx, conn.RequestHeader())
		s.unreported.Store(true)
		return s
	}
}

// retryConn is the StreamingClientConn handed to the caller. It forwards to
// the current underlying conn and replaces it at most once. Once no retry
// can happen any more (a response arrived, the retry was made, or the
// replay bounds were passed) it is settled: cur never changes again and the
// methods forward without the lock.
type retryConn struct {
	i *Interceptor
	// ctx is the caller's context for the call, kept to open the stream
	// again on a retry, as connect-go keeps it in its own conns.
	ctx  context.Context
	spec connect.Spec
	next connect.StreamingClientFunc

	settled atomic.Bool // set after the last write of the fields below
	// unreported is set while no received message has been reported to
	// the authenticator as accepted (see accepter).
	unreported atomic.Bool

	mu        sync.Mutex // guards the fields below until settled; held during a retry
	cur       connect.StreamingClientConn
	at        attempt
	sent      []any // messages sent, kept for a replay while canRetry
	sentBytes int
	closed    bool // CloseRequest was called
	canRetry  bool // no retry yet, no response yet, sent within bounds
}

func (s *retryConn) current() connect.StreamingClientConn {
	if s.settled.Load() {
		return s.cur
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// settleLocked publishes that no retry can happen any more, if so.
func (s *retryConn) settleLocked() {
	if !s.canRetry {
		s.sent = nil
		s.settled.Store(true)
	}
}

// keepLocked records m for a replay, or gives up the retry when m passes
// a bound.
func (s *retryConn) keepLocked(m any) {
	if s.spec.StreamType == connect.StreamTypeServer {
		// The one request message; the caller holds it anyway.
		if len(s.sent) == 0 {
			s.sent = append(s.sent, m)
			return
		}
		s.canRetry = false
		return
	}
	pm, ok := m.(proto.Message)
	if !ok || len(s.sent) >= s.i.o.maxReplay {
		s.canRetry = false
		return
	}
	size := proto.Size(pm)
	if s.sentBytes+size > s.i.o.maxReplayBytes {
		s.canRetry = false
		return
	}
	s.sent = append(s.sent, m)
	s.sentBytes += size
}

// Spec returns the stream's Spec.
func (s *retryConn) Spec() connect.Spec { return s.spec }

// Peer returns the peer of the current stream.
func (s *retryConn) Peer() connect.Peer { return s.current().Peer() }

// RequestHeader returns the request header of the current stream.
func (s *retryConn) RequestHeader() http.Header { return s.current().RequestHeader() }

// Send sends m on the current stream and keeps it for a replay while a
// retry is possible. When the stream has already ended (an error wrapping
// io.EOF) and a retry is still possible, m is kept and nil returned:
// Receive then learns why the stream ended and, if it was a rejection,
// replays m on the new stream.
func (s *retryConn) Send(m any) error {
	if s.settled.Load() {
		return s.cur.Send(m)
	}
	s.mu.Lock()
	if s.canRetry {
		s.keepLocked(m)
	}
	cur, kept := s.cur, s.canRetry
	s.settleLocked()
	s.mu.Unlock()
	err := cur.Send(m)
	if kept && errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// CloseRequest closes the sending side of the current stream, and of the
// new one should the call be retried.
func (s *retryConn) CloseRequest() error {
	if s.settled.Load() {
		return s.cur.CloseRequest()
	}
	s.mu.Lock()
	s.closed = true
	cur := s.cur
	s.mu.Unlock()
	return cur.CloseRequest()
}

// Receive receives from the current stream. If the stream fails with a
// refresh code before any response message arrived, the call is retried
// once on a new stream and the message received from there.
func (s *retryConn) Receive(m any) error {
	for {
		if s.settled.Load() {
			err := s.cur.Receive(m)
			if err != nil {
				return s.i.afterRetry(s.at, err)
			}
			if s.unreported.Load() && s.unreported.CompareAndSwap(true, false) {
				s.i.accepted(s.at)
			}
			return nil
		}
		s.mu.Lock()
		cur := s.cur
		s.mu.Unlock()
		err := cur.Receive(m)
		s.mu.Lock()
		if err == nil {
			s.canRetry = false
			at := s.at
			s.settleLocked()
			s.mu.Unlock()
			if s.unreported.CompareAndSwap(true, false) {
				s.i.accepted(at)
			}
			return nil
		}
		err = s.retryLocked(err)
		s.settleLocked()
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// ResponseHeader returns the response header of the current stream.
func (s *retryConn) ResponseHeader() http.Header { return s.current().ResponseHeader() }

// ResponseTrailer returns the response trailer of the current stream.
func (s *retryConn) ResponseTrailer() http.Header { return s.current().ResponseTrailer() }

// CloseResponse closes the receiving side of the current stream.
func (s *retryConn) CloseResponse() error { return s.current().CloseResponse() }

// retryLocked opens the stream again after err, if err calls for it and a
// retry is still possible, and replays what was sent. It returns nil when
// the call now runs on the new stream, else the error for the caller. s.mu
// is held.
func (s *retryConn) retryLocked(err error) error {
	if errors.Is(err, io.EOF) {
		return err
	}
	if !s.canRetry {
		return s.i.afterRetry(s.at, err)
	}
	s.canRetry = false
	sent := s.sent
	s.sent = nil
	retry, err := s.i.afterFailure(s.ctx, s.spec.Procedure, s.at, err)
	if !retry {
		return err
	}
	old := s.cur
	_ = old.CloseResponse()
	conn := s.next(s.ctx, s.spec)
	h := conn.RequestHeader()
	for k, vs := range old.RequestHeader() {
		if _, set := h[k]; !set {
			h[k] = append([]string(nil), vs...)
		}
	}
	if s.at.key != "" {
		h.Del(s.at.key)
	}
	s.at = s.i.attach(s.ctx, h)
	s.cur = conn
	for _, m := range sent {
		if err := conn.Send(m); err != nil {
			break // the new stream ended too; its Receive says why
		}
	}
	if s.closed {
		_ = conn.CloseRequest()
	}
	return nil
}
