package authenticator

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The pauses after a failed token request: the retry pause, during which
// a call that finds no token gets the failure instead of asking again, the
// longer pause after a refusal for good, and the login pause of a flow
// that asks a person.

// failure is the last failed token request, kept briefly so that the
// calls that follow it (or, with WithLazyStart, the rejection of a call
// that went out without a token) report it instead of asking again.
type failure struct {
	at  time.Time
	err error
	// login: the failed request was allowed to ask a person (it was not a
	// background refresh); for a login flow it starts the login pause.
	login bool
	// reported: a rejection reported it (recentFailure); the next call
	// asks again, unless the login pause holds.
	reported bool
	// refusedFor is how long no request follows a refusal for good (see
	// refusalPauseMin); zero for a failure that may pass.
	refusedFor time.Duration
}

// The pause after a token request the server refused for good (a 4xx,
// such as invalid_client): a wrong secret is not
// sent again for every call. It starts at refusalPauseMin and doubles
// while the refusals repeat, up to refusalPauseMax; RefreshCredentials
// asks at once.
const (
	refusalPauseMin = time.Second
	refusalPauseMax = time.Minute
)

// failed records a failed token request; login says the request was
// allowed to ask a person.
func (k *Keeper) failed(err error, login bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f := failure{at: k.opts.now(), err: err, login: login}
	// A refused refresh token leads to a login, not to a pause.
	if refusedForGood(err) && !errors.Is(err, errLoginNeeded) {
		f.refusedFor = min(refusalPauseMax, refusalPauseMin<<min(k.refusals, 6))
		k.refusals++
	} else {
		k.refusals = 0
	}
	k.lastFail = f
}

// refusedForGood reports whether the token endpoint refused the request
// in a way that the same request would meet again: a 4xx, such as
// invalid_client, unauthorized_client or invalid_scope (but 429, too many
// requests, which passes). A 5xx may pass, whatever its body says.
func refusedForGood(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 && te.StatusCode != http.StatusTooManyRequests
}

// paused returns the last failure's error while a pause after it lasts:
// the login pause, or the pause after a refusal for good; else nil.
func (k *Keeper) paused() error {
	if err := k.loginPaused(); err != nil {
		return err
	}
	k.mu.Lock()
	f := k.lastFail
	k.mu.Unlock()
	left := f.refusedFor - k.opts.now().Sub(f.at)
	if f.err == nil || left <= 0 {
		return nil
	}
	return fmt.Errorf("%w (refused; no new token request for %s)", f.err, left.Round(100*time.Millisecond))
}

// loginPause is how long after a failed or declined login a flow that
// asks a person (a browser login, a device code) is not asked again,
// unless explicitly (RefreshCredentials): one login per call that needs
// a token, not one per call and per rejection.
const loginPause = 30 * time.Second

// loginPaused returns the last login's error while the login pause after
// it lasts, for a flow that asks a person; else nil.
func (k *Keeper) loginPaused() error {
	if _, asksPerson := k.flow.(timeoutFlow); !asksPerson {
		return nil
	}
	k.mu.Lock()
	f := k.lastFail
	k.mu.Unlock()
	left := loginPause - k.opts.now().Sub(f.at)
	if f.err == nil || !f.login || left <= 0 {
		return nil
	}
	return fmt.Errorf("%w (no new login for %s)", f.err, left.Round(time.Second))
}

// recentFailure returns the last token request's error if it failed
// within the retry pause, so that a call that finds no token (or the
// rejection of a lazily started call) reports it rather than asking again.
// With consume, the failure is reported once: the next call asks again.
func (k *Keeper) recentFailure(consume bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.lastFail.err
	if err == nil || k.lastFail.reported || k.opts.now().Sub(k.lastFail.at) >= k.opts.retryPause {
		return nil
	}
	if consume {
		k.lastFail.reported = true // kept for the login pause
	}
	return err
}
