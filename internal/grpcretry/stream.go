package grpcretry

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth/internal/retry"
)

// Stream is the stream interceptor: it opens one streaming call on the
// retry engine.
func (x *Auth) Stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
	if x.o.Skip[method] {
		return streamer(ctx, desc, cc, method, callOpts...)
	}
	s := &clientStream{x: x, desc: desc, cc: cc, method: method, streamer: streamer, callOpts: callOpts}
	if err := s.Start(ctx, s, &x.p, method, !desc.ClientStreams, x.o.MaxReplay); err != nil {
		return nil, err
	}
	return s, nil
}

// streamAttempt is one gRPC stream opened for a call.
type streamAttempt struct {
	cs    grpc.ClientStream
	creds callCreds // storage for the attempt's credentials
}

func (a *streamAttempt) Send(m any) error { return a.cs.SendMsg(m) }
func (a *streamAttempt) CloseSend() error { return a.cs.CloseSend() }
func (a *streamAttempt) Recv(m any) error { return a.cs.RecvMsg(m) }

// clientStream is the grpc.ClientStream handed to the caller: the retry
// engine's stream, with gRPC's Header, Trailer and Context on top.
type clientStream struct {
	retry.Stream[*streamAttempt]
	x        *Auth
	desc     *grpc.StreamDesc
	cc       *grpc.ClientConn
	method   string
	streamer grpc.Streamer
	callOpts []grpc.CallOption
	first    streamAttempt // the first attempt's storage
	opened   bool          // first is in use
}

// Open opens an attempt of the call with the current credential.
func (s *clientStream) Open(ctx context.Context) (*streamAttempt, retry.Carried, error) {
	a := &s.first
	if s.opened {
		a = new(streamAttempt)
	}
	s.opened = true
	opts, c, err := s.x.attach(ctx, s.callOpts, &a.creds)
	if err != nil {
		return a, c, err
	}
	a.cs, err = s.streamer(ctx, s.desc, s.cc, s.method, opts...)
	return a, c, err
}

// Code and Fail are the engine's view of gRPC errors.
func (s *clientStream) Code(err error) codes.Code { return status.Code(err) }

func (s *clientStream) Fail(ctx context.Context, o retry.Outcome, callErr, cause error) error {
	return s.x.fail(ctx, o, callErr, cause)
}

// SendMsg sends m, and keeps it for a replay while a retry is possible.
func (s *clientStream) SendMsg(m any) error { return s.Send(m) }

// RecvMsg receives from the attempt that serves the call; a refusal
// before any response leads to one retry.
func (s *clientStream) RecvMsg(m any) error { return s.Recv(m, contextStatus) }

func contextStatus(err error) error { return status.FromContextError(err).Err() }

// Header returns the header of the attempt that serves the call. An
// attempt that ended before sending a header is retried if it was
// refused, by whoever holds the receive role.
func (s *clientStream) Header() (metadata.MD, error) {
	for {
		a := s.Current()
		md, err := a.cs.Header()
		if md != nil || err != nil {
			return md, err
		}
		// gRPC reports an attempt that ended before its header as (nil,
		// nil) and keeps the status for RecvMsg.
		if s.Settled() && s.Current() == a {
			return nil, nil // the call's last attempt ended; RecvMsg says why
		}
		if !s.Probe(a, new(emptypb.Empty)) {
			return nil, nil // RecvMsg says why
		}
	}
}

// Trailer returns the trailer of the attempt that serves the call.
func (s *clientStream) Trailer() metadata.MD { return s.Current().cs.Trailer() }

// Context returns the context of the attempt that serves the call. It never
// waits. Before and during a retry that is the refused attempt's, which is
// done once the attempt ended: a caller that watches Context().Done() across
// a retry should take Context again after Header or the first message.
func (s *clientStream) Context() context.Context { return s.Current().cs.Context() }
