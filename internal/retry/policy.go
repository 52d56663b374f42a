// Package retry is the one retry engine of the module: attach a
// credential to an attempt of a call, classify the answer, get a new
// credential, and send the call once more, replaying what a stream had sent
// within one bound. The gRPC interceptors (OAuth2 token and proxy token)
// and package connectauth are adapters onto it: each says how to open an
// attempt with a credential and how to spell an error; Policy says when a
// refusal calls for a new credential, and Stream runs a stream across at
// most two attempts.
package retry

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/notyet"
)

// MaxReplayBytes bounds what a retried stream replays, counted as each
// message's protobuf size plus the 5-byte gRPC message prefix: the initial
// HTTP/2 stream window, which a new stream can always take without waiting
// for the server to read, so that a replay never waits on answers nobody
// reads. It is the same for gRPC and connect-go.
const MaxReplayBytes = 65535

// DefaultMaxReplay is how many sent messages a stream keeps for a replay
// when the caller sets no bound.
const DefaultMaxReplay = 64

// Policy decides, for one kind of credential, what an attempt carries and
// what a failed attempt leads to. Its fields are set once; it is safe for
// concurrent use.
type Policy struct {
	// Creds gives and renews the credential.
	Creds authenticator.Authenticator
	// Refused reports whether a failed attempt, which carried c, was
	// refused for its credential, so that a new one may get it through.
	Refused func(c Carried, code codes.Code, err error) bool
	// Passed, when set, reports whether a failed attempt got past the
	// credential's judge all the same (a proxy that let a call through to
	// a server that failed it); by default only a success does.
	Passed func(c Carried, err error) bool
	// Cause wraps the error of a failed refresh, when set.
	Cause func(error) error
	// What names the credential in logs ("token", "proxy credential").
	What string
	// Logger receives debug and warn records; it must not be nil.
	Logger *slog.Logger
	// OnRetry, when set, hears of each call sent again.
	OnRetry func(method string, code codes.Code)
}

// Carried is what one attempt of a call carried.
type Carried struct {
	// Value is the credential offered, "" when none was.
	Value string
	// Unsent says that the attempt was never sent: no credential could be
	// got for it. Its error is the call's, as it is.
	Unsent bool
	// W says whether the credential was withheld from an insecure
	// transport; nil when it was not.
	W interface{ Withheld() bool }
	// A, when set, says whether the attempt was answered in the call's
	// own protocol (a gRPC response, with its content type), which a proxy
	// refusing the call never gives; nil when the adapter does not watch.
	A interface{ Answered() bool }
}

// Answered reports whether the attempt was answered in the call's own
// protocol; false when nobody watched.
func (c Carried) Answered() bool { return c.A != nil && c.A.Answered() }

// Sent reports whether the attempt's credential went out.
func (c Carried) Sent() bool { return c.Value != "" && !c.Withheld() }

// Withheld reports whether the attempt's credential was held back from an
// insecure transport.
func (c Carried) Withheld() bool { return c.W != nil && c.W.Withheld() }

// Outcome is what a failed attempt leads to.
type Outcome int

const (
	// Return: the call ends with the attempt's error as it is.
	Return Outcome = iota
	// Retry: a new credential is at hand; send the call again.
	Retry
	// Withheld: the attempt was refused, and its credential had been held
	// back from an insecure transport; no new one would help.
	Withheld
	// RefreshFailed: the attempt was refused and no new credential could
	// be got; the error returned with it says why.
	RefreshFailed
	// ContextEnded: the caller's context ended while the new credential
	// was being got.
	ContextEnded
)

// Credential returns the credential for an attempt. ("", "", nil) means
// the attempt goes out without one: the source has none yet and waits for
// a server to ask (notyet.Err). Any other error ends the call unsent: the
// caller's context ended (ctx.Err() says so), the keeper was closed
// (authenticator.ErrClosed), or the credential could not be got. A call is
// not sent where it is sure to be refused, and its caller reads why no
// credential came rather than the server's rejection; the keeper asks
// again after its pause, not at every call.
func (p *Policy) Credential(ctx context.Context) (key, value string, err error) {
	key, value, err = p.Creds.Credential(ctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, notyet.Err) {
		return "", "", nil
	}
	return key, value, err
}

// Decide says what an attempt that carried c and failed with err (whose
// status code is code) leads to. retried says that the attempt was the
// call's retry. For Retry it has got the new credential already; for
// RefreshFailed and ContextEnded the error says why the refresh failed.
func (p *Policy) Decide(ctx context.Context, method string, c Carried, code codes.Code, err error, retried bool) (Outcome, error) {
	if c.Unsent {
		return Return, nil
	}
	if !p.Refused(c, code, err) {
		if p.Passed != nil && p.Passed(c, err) {
			p.Accepted(c)
		}
		return Return, nil
	}
	if c.Withheld() {
		p.Logger.Warn("grpcauth: call refused; its "+p.What+" was withheld on an insecure transport", "method", method)
		return Withheld, nil
	}
	if retried || ctx.Err() != nil {
		return Return, nil
	}
	p.Logger.Debug("grpcauth: call rejected, refreshing credentials", "what", p.What, "method", method, "code", code)
	if rerr := p.Creds.Rejected(ctx, c.Value); rerr != nil {
		if p.Cause != nil {
			rerr = p.Cause(rerr)
		}
		if ctx.Err() != nil {
			return ContextEnded, rerr
		}
		return RefreshFailed, rerr
	}
	if p.OnRetry != nil {
		p.OnRetry(method, code)
	}
	return Retry, nil
}

// Accepted tells the authenticator that the server accepted the
// credential c carried, if it went out.
func (p *Policy) Accepted(c Carried) {
	if c.Sent() {
		p.Creds.Accepted(c.Value)
	}
}
