package authenticator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Rejected requests a new token if value is still the current one (or no
// token is held yet), and returns nil at once if it has already been
// replaced. The interceptors call it after the server rejected value.
//
// A server that rejects every fresh token would otherwise cost one token
// request per call: when the rejected token was never accepted by any call
// (Accepted), the second such rejection in a row and those after it wait
// out a backoff (jittered, doubling from 1 s up to 1 min) before the next
// request, and fail at once with
// an error that says so meanwhile. Any accepted call ends the backoff.
func (k *Keeper) Rejected(ctx context.Context, value string) error {
	c := k.current.Load()
	if c == nil {
		if err := k.recentFailure(true); err != nil {
			return err
		}
		_, err := k.refresh(ctx, nil, causeRejected)
		return err
	}
	if c.value != value {
		return nil
	}
	if !c.accepted.Load() {
		k.mu.Lock()
		if !c.rejected {
			// One count per token, however many calls carried it, and one
			// backoff drawn for it.
			c.rejected = true
			k.streak++
			c.retryAt = c.obtained.Add(k.backoffFor(k.streak))
		}
		n, left := k.streak, c.retryAt.Sub(k.opts.now())
		k.mu.Unlock()
		if left > 0 {
			return fmt.Errorf("authenticator: %w: %d tokens in a row were rejected before any call accepted one; next token request in %s", ErrRejectedBackoff, n, left.Round(time.Millisecond))
		}
	}
	_, err := k.refresh(ctx, c, causeRejected)
	return err
}

// ErrRejectedBackoff is wrapped by the error of Rejected while the
// Keeper backs off from a server that rejects every fresh token.
var ErrRejectedBackoff = errors.New("the server rejects fresh tokens: backing off")

// The rejection backoff of Rejected: from 1 s, doubling, up to 1 min.
const (
	rejectBackoff    = time.Second
	maxRejectBackoff = time.Minute
)

// backoffFor is how long after the rejected token was obtained the n-th
// rejection in a row of a never-accepted token may ask for another. The
// first is answered at once: a token can be revoked between its request
// and its first use.
func (k *Keeper) backoffFor(n int32) time.Duration {
	if n <= 1 {
		return 0
	}
	d := rejectBackoff << min(n-2, 16)
	d = min(d, maxRejectBackoff)
	// ±20% jitter, so that many clients of one server spread out.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Accepted tells the Keeper that a call carrying value succeeded. The
// interceptors call it; it ends a rejection backoff. It costs two atomic
// loads once a token has been accepted.
func (k *Keeper) Accepted(value string) {
	c := k.current.Load()
	if c == nil || c.accepted.Load() || c.value != value {
		return
	}
	c.accepted.Store(true)
	k.mu.Lock()
	k.streak = 0
	k.mu.Unlock()
}

// recentFailure returns the last token request's error if it failed
// within the retry pause, so that the rejection of a call that went out
// without a token because of it reports it rather than asking again. With
// consume, the failure is reported once: the next call asks again.
func (k *Keeper) recentFailure(consume bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.lastFail.err
	if err == nil || k.opts.now().Sub(k.lastFail.at) >= k.opts.retryPause {
		return nil
	}
	if consume {
		k.lastFail = failure{}
	}
	return err
}
