// Package httpauth is the one HTTP round tripper that carries a credential:
// the bearer token of a Keeper (Keeper.Transport, FlyteAdmin's HTTP API)
// and the proxy token of proxyCommand (on token requests, discovery and
// connect-go calls). It attaches the credential, and when the answer says
// the credential was refused, gets a new one and sends the request again
// once, if its body can be read again.
//
// A credential goes only where the request was meant to go: never over
// plain http to a host that is not loopback (unless allowed), and never to
// a redirect hop whose scheme or host differs from the first request's, as
// net/http itself drops Authorization on such a hop.
package httpauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/flyteauth/grpcauth/internal/notyet"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Credentials is what the transport needs of an authenticator (an
// authenticator.Authenticator has these methods).
type Credentials interface {
	Credential(ctx context.Context) (key, value string, err error)
	Rejected(ctx context.Context, value string) error
	Accepted(value string)
}

// Transport is an http.RoundTripper that sends each request through Base
// with a credential. Its fields are set once before use; it is safe for
// concurrent use.
type Transport struct {
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
	// Creds gives the credential; nil fails every request that would
	// carry it.
	Creds Credentials
	// Header is the header that carries the credential's value, such as
	// "Authorization"; "" uses the credential's own key.
	Header string
	// Refused tells an answer that refused the credential.
	Refused func(*http.Response) bool
	// AllowHTTP lets the credential go over plain http to any host.
	AllowHTTP bool
	// Refuse, when set, makes a request that may not carry the credential
	// fail unsent with an error that wraps it; otherwise the request goes
	// out without the credential.
	Refuse error
	// What names the credential in logs and errors ("token", "proxy
	// credential").
	What string
	// Logger receives debug and warn records; nil discards them.
	Logger *slog.Logger
	// OnRetry, when set, is called before a request is sent again.
	OnRetry func(path string)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// RoundTrip sends r with the credential, and again once with a new one if
// the answer refused it.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL == nil {
		closeBody(r.Body)
		return nil, errors.New("grpcauth: request without a URL")
	}
	if crossOrigin(r) {
		// As net/http drops Authorization on such a hop, so do we.
		t.logger().Debug("grpcauth: a redirect to another scheme or host goes without the "+t.What, "host", redact.Clip(r.URL.Host, 200))
		return t.base().RoundTrip(r)
	}
	if !t.AllowHTTP && !strings.EqualFold(r.URL.Scheme, "https") && !transportsec.LoopbackHost(r.URL.Hostname()) {
		const why = "plain http to a host that is not loopback; use https, or allow plaintext explicitly (Flyte's insecure: true)"
		if t.Refuse != nil {
			closeBody(r.Body)
			return nil, fmt.Errorf("grpcauth: %w: not sending the %s to %s: %s", t.Refuse, t.What, redact.URL(r.URL.String()), why)
		}
		t.logger().Warn("grpcauth: sending a request without the "+t.What, "host", redact.Clip(r.URL.Host, 200), "reason", why)
		return t.base().RoundTrip(r)
	}
	if t.Creds == nil {
		closeBody(r.Body)
		return nil, fmt.Errorf("grpcauth: no %s for %s: the transport was built with a nil authenticator", t.What, redact.URL(r.URL.String()))
	}
	ctx := r.Context()
	key, value, err := t.Creds.Credential(ctx)
	if err != nil && (ctx.Err() != nil || !errors.Is(err, notyet.Err)) {
		// A request goes without a credential only while the source waits
		// for a server to ask for one.
		closeBody(r.Body)
		return nil, fmt.Errorf("grpcauth: no %s for %s: %w", t.What, redact.URL(r.URL.String()), err)
	}
	first := r.Body
	if canReplay(r) {
		first = &fenced{body: r.Body, lock: make(chan struct{}, 1)}
	}
	resp, err := t.send(r, first, key, value)
	if err != nil {
		return nil, err
	}
	if !t.Refused(resp) {
		t.accepted(value)
		return resp, nil
	}
	if ctx.Err() != nil {
		return resp, nil
	}
	// The refusal is reported even when the request cannot be sent again,
	// so that the next request does not carry the refused credential.
	body, replay := r.Body, true
	if f, ok := first.(*fenced); ok {
		// The first request's transport may still read its body, and
		// GetBody may give the same reader back rewound (connect-go does).
		if replay = f.shut(ctx) == nil; replay {
			body, err = r.GetBody()
			replay = err == nil
		}
	} else if body != nil && body != http.NoBody {
		replay = false
	}
	t.logger().Debug("grpcauth: the "+t.What+" was refused, getting a new one", "status", resp.StatusCode, "host", redact.Clip(r.URL.Host, 200))
	if err := t.Creds.Rejected(ctx, value); err != nil {
		closeBody(body)
		t.logger().Warn("grpcauth: getting a new "+t.What+" failed", "host", redact.Clip(r.URL.Host, 200), "error", err)
		return resp, nil // the refusal, as it came
	}
	if !replay {
		return resp, nil
	}
	if key, value, err = t.Creds.Credential(ctx); err != nil {
		closeBody(body)
		return resp, nil
	}
	// The first answer is dropped only now that a second request can go;
	// a little of it is read so that its connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if t.OnRetry != nil {
		t.OnRetry(r.URL.Path)
	}
	resp, err = t.send(r, body, key, value)
	if err == nil && !t.Refused(resp) {
		t.accepted(value)
	}
	return resp, err
}

// canReplay reports whether r's body can be sent again: none, or one that
// GetBody gives anew.
func canReplay(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.GetBody != nil
}

// fenced is the body of a first request that may be sent again. A
// transport may read a request body after RoundTrip has returned
// (http.RoundTripper allows it); once shut, every read fails without
// touching the body, so a rewound copy belongs to the second request
// alone.
type fenced struct {
	body   io.ReadCloser
	lock   chan struct{} // held across a read; a lock that a wait can give up on
	closed bool          // under lock
}

var errBodyReplaced = errors.New("grpcauth: the request body was handed to a second request")

func (f *fenced) Read(p []byte) (int, error) {
	f.lock <- struct{}{}
	defer func() { <-f.lock }()
	if f.closed {
		return 0, errBodyReplaced
	}
	return f.body.Read(p)
}

// Close is not under the lock: a transport may close a body to end a read
// that blocks.
func (f *fenced) Close() error { return f.body.Close() }

// shut waits for a read in flight to end, then fails every later one.
func (f *fenced) shut(ctx context.Context) error {
	select {
	case f.lock <- struct{}{}:
		f.closed = true
		<-f.lock
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send sends a copy of r with body and, when value is set, the credential.
func (t *Transport) send(r *http.Request, body io.ReadCloser, key, value string) (*http.Response, error) {
	if value == "" {
		if body == r.Body {
			return t.base().RoundTrip(r)
		}
		out := r.Clone(r.Context())
		out.Body = body
		return t.base().RoundTrip(out)
	}
	if t.Header != "" {
		key = t.Header
	}
	return t.base().RoundTrip(with(r, body, key, value))
}

// accepted reports a credential that got through.
func (t *Transport) accepted(value string) {
	if value != "" {
		t.Creds.Accepted(value)
	}
}

// crossOrigin reports whether r is a redirect hop to another scheme or
// host than the request it began with. A hop whose chain back to that
// request is broken (a base transport that left Response.Request nil)
// counts as one: the credential is withheld rather than sent where it
// cannot be told safe.
func crossOrigin(r *http.Request) bool {
	first := r
	for first.Response != nil {
		if first.Response.Request == nil {
			return true
		}
		first = first.Response.Request
	}
	return !strings.EqualFold(first.URL.Scheme, r.URL.Scheme) || !strings.EqualFold(first.URL.Host, r.URL.Host)
}

// with returns a copy of r with body and the header key set to value; a
// RoundTripper must not change the request it was given.
func with(r *http.Request, body io.ReadCloser, key, value string) *http.Request {
	out := r.Clone(r.Context())
	out.Body = body
	out.Header.Set(key, value)
	return out
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}

// CloseIdleConnections closes the idle connections of Base, so that a
// client built on the transport can be closed; never those of
// http.DefaultTransport, which the whole process shares.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.Base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
