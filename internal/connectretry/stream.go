package connectretry

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/internal/retry"
)

// Streaming attaches the token to a client, server or bidi
// stream and, when the stream fails with a refresh code before any response
// message arrived, refreshes the token, opens the stream again with the
// same request headers and replays what the caller had sent (within the
// replay bounds), on the same retry engine as the gRPC interceptors. The
// retry happens in Receive; a caller that read ResponseHeader before it
// sees the failed attempt's header.
func (i *Auth) Streaming(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		if i.o.Skip[spec.Procedure] {
			return next(ctx, spec)
		}
		s := &retryConn{i: i, spec: spec, next: next}
		// Opening a connect-go stream sends nothing; Start fails only
		// when no token could be got for it.
		if err := s.Start(ctx, s, &i.p, spec.Procedure, spec.StreamType == connect.StreamTypeServer, i.o.MaxReplay); err != nil {
			return &failedConn{spec: spec, err: err, req: http.Header{}, resp: http.Header{}, trl: http.Header{}}
		}
		return s
	}
}

// connAttempt is one connect-go stream opened for a call.
type connAttempt struct{ conn connect.StreamingClientConn }

func (a *connAttempt) Send(m any) error { return a.conn.Send(m) }
func (a *connAttempt) CloseSend() error { return a.conn.CloseRequest() }
func (a *connAttempt) Recv(m any) error { return a.conn.Receive(m) }

// retryConn is the StreamingClientConn handed to the caller: the retry
// engine's stream, with connect-go's headers on top. Send is the
// engine's.
type retryConn struct {
	retry.Stream[*connAttempt]
	i     *Auth
	spec  connect.Spec
	next  connect.StreamingClientFunc
	first connAttempt  // the first attempt's storage
	last  *connAttempt // the attempt opened last, nil before the first
	key   string       // the header key the last attempt's token went in
}

// Open opens an attempt of the call with the current token. A retry's
// attempt gets the request headers the caller set on the first. The token
// comes first: a connect-go stream, once opened, cannot be closed before
// it was sent, so none is opened for an attempt that is not sent.
func (s *retryConn) Open(ctx context.Context) (*connAttempt, retry.Carried, error) {
	key, value, c, err := s.i.credential(ctx)
	if err != nil {
		return nil, c, err
	}
	a := &s.first
	conn := s.next(ctx, s.spec)
	h := conn.RequestHeader()
	if prev := s.last; prev != nil {
		a = new(connAttempt)
		for k, vs := range prev.conn.RequestHeader() {
			if _, set := h[k]; !set {
				h[k] = append([]string(nil), vs...)
			}
		}
		if s.key != "" {
			h.Del(s.key)
		}
		_ = prev.conn.CloseResponse()
	}
	a.conn, s.last = conn, a
	s.key = put(h, key, value)
	return a, c, nil
}

// Code and Fail are the engine's view of connect-go errors.
func (s *retryConn) Code(err error) codes.Code { return code(err) }

func (s *retryConn) Fail(ctx context.Context, o retry.Outcome, callErr, cause error) error {
	return fail(ctx, o, callErr, cause)
}

// Spec returns the stream's Spec.
func (s *retryConn) Spec() connect.Spec { return s.spec }

// Peer returns the peer of the current stream.
func (s *retryConn) Peer() connect.Peer { return s.Current().conn.Peer() }

// RequestHeader returns the request header of the current stream.
func (s *retryConn) RequestHeader() http.Header { return s.Current().conn.RequestHeader() }

// CloseRequest closes the sending side of the current stream, and of the
// new one should the call be retried.
func (s *retryConn) CloseRequest() error { return s.CloseSend() }

// Receive receives from the current stream. If the stream fails with a
// refresh code before any response message arrived, the call is retried
// once on a new stream and the message received from there.
func (s *retryConn) Receive(m any) error { return s.Recv(m, contextError) }

// ResponseHeader returns the response header of the current stream.
func (s *retryConn) ResponseHeader() http.Header { return s.Current().conn.ResponseHeader() }

// ResponseTrailer returns the response trailer of the current stream.
func (s *retryConn) ResponseTrailer() http.Header { return s.Current().conn.ResponseTrailer() }

// CloseResponse closes the receiving side of the current stream.
func (s *retryConn) CloseResponse() error { return s.Current().conn.CloseResponse() }

// failedConn is the stream of a call that was not sent: every method that
// would send or receive reports why.
type failedConn struct {
	spec           connect.Spec
	err            error
	req, resp, trl http.Header // apart, as on a stream that was sent
}

func (f *failedConn) Spec() connect.Spec           { return f.spec }
func (f *failedConn) Peer() connect.Peer           { return connect.Peer{} }
func (f *failedConn) Send(any) error               { return f.err }
func (f *failedConn) RequestHeader() http.Header   { return f.req }
func (f *failedConn) CloseRequest() error          { return nil }
func (f *failedConn) Receive(any) error            { return f.err }
func (f *failedConn) ResponseHeader() http.Header  { return f.resp }
func (f *failedConn) ResponseTrailer() http.Header { return f.trl }
func (f *failedConn) CloseResponse() error         { return nil }
