// Package wholebody is a round tripper for clients that do not bound their
// own requests: it makes each request with a given context and reads each
// answer whole, up to a limit, before handing it on.
package wholebody

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// Transport returns a round tripper that sends each request through base
// (http.DefaultTransport when nil) with ctx, whatever context the request
// had, and reads and closes each answer's body, failing when it is longer
// than limit bytes. The answer it returns holds the body in memory.
func Transport(ctx context.Context, base http.RoundTripper, limit int64) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return transport{ctx: ctx, base: base, limit: limit}
}

type transport struct {
	ctx   context.Context
	base  http.RoundTripper
	limit int64
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r.WithContext(t.ctx))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, t.limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > t.limit {
		return nil, fmt.Errorf("the answer is larger than %d bytes", t.limit)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
