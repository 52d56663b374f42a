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
// A server that rejects fresh tokens would otherwise cost one token request
// per call, and so would one service (or one method) that rejects the
// tokens other calls get accepted. So tokens rejected less than a minute
// after the previous rejection count as a row, whatever other calls do,
// and from the second in a row (the sixth, for tokens that calls had
// accepted: revocations, key rotations) a rejection waits out a backoff
// (jittered, doubling from 1 s up to 1 min, from when the token was
// obtained) before the next request, and fails at once with an error that
// says so meanwhile. Accepted calls do not end the row; a minute without
// any rejection does.
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
	k.mu.Lock()
	now := k.opts.now()
	if !c.rejected {
		// One count per token, however many calls carried it, and one
		// backoff drawn for it.
		c.rejected = true
		if now.Sub(k.lastRejection) >= maxRejectBackoff {
			k.streak = 0
		}
		k.streak++
		n := k.streak
		if c.accepted.Load() {
			n -= acceptedAllowance
		}
		c.retryAt = c.obtained.Add(k.backoffFor(n))
	}
	// Every rejection keeps the row going: a service that keeps rejecting
	// during the backoff keeps it.
	k.lastRejection = now
	n, left := k.streak, c.retryAt.Sub(now)
	k.mu.Unlock()
	if left > 0 {
		others := ""
		if c.accepted.Load() {
			others = " (the last one was accepted by other calls)"
		}
		return fmt.Errorf("authenticator: %w: the server rejected %d tokens in a row%s; next token request in %s", ErrRejectedBackoff, n, others, left.Round(time.Millisecond))
	}
	_, err := k.refresh(ctx, c, causeRejected)
	return err
}

// ErrRejectedBackoff is wrapped by the error of Rejected while the
// Keeper backs off from a server that rejects every fresh token.
var ErrRejectedBackoff = errors.New("the server keeps rejecting tokens: backing off")

// The rejection backoff of Rejected: from 1 s, doubling, up to 1 min;
// tokens that calls accepted are allowed acceptedAllowance more in a row
// before it starts.
const (
	rejectBackoff     = time.Second
	maxRejectBackoff  = time.Minute
	acceptedAllowance = 4
)

// backoffFor is how long after the rejected token was obtained the n-th
// rejected token in a row may ask for another. The first is answered at
// once: a token can be revoked at any time, such as between its request
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
// interceptors call it; the error of a rejection backoff then says that
// other calls accept the token, which points at one service or method
// that rejects it. It costs two atomic loads once a token has been
// accepted.
func (k *Keeper) Accepted(value string) {
	c := k.current.Load()
	if c == nil || c.accepted.Load() || c.value != value {
		return
	}
	c.accepted.Store(true)
}
