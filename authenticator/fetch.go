package authenticator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/nologin"
)

// A token request of a Keeper with a cache runs in two steps, so that the
// processes of one user that share the cache never redeem one refresh
// token twice (a provider that rotates refresh tokens and detects reuse
// revokes the whole login then):
//
//  1. Under the cache entry's lock: re-read the entry; take a valid token
//     another process saved; else redeem the newest refresh token, or run
//     a flow that asks no person, and save the answer before the lock is
//     released. A refused refresh token leaves the entry.
//  2. When only a login would do and the caller may ask a person: look at
//     the entry once more (another process may have logged in meanwhile),
//     else log in, outside the lock, and save the new login.
//
// Without a cache, the same steps run without the lock.

// fetchToken resolves the client configuration and gets a token.
func (k *Keeper) fetchToken(ctx context.Context) (*held, error) {
	cfg, key, err := k.resolve(ctx)
	if err != nil {
		k.stats.requests.Add(1)
		return nil, err
	}
	t := &turn{k: k, ctx: ctx, cfg: cfg, key: key, cacheKey: cacheKey(k.endpoint, cfg)}
	if cur := k.current.Load(); cur != nil {
		t.prev = cur.tok
	}
	got, err := t.underLock()
	if got != nil || err != nil {
		return got, err
	}
	return t.login()
}

// turn is one token request of a flight.
type turn struct {
	k        *Keeper
	ctx      context.Context
	cfg      *configstore.ClientConfig
	key      string // the header key
	cacheKey string
	prev     *oauth2.Token // the Keeper's current token; nil for none
	// loginNeeded is the flow's word that only a login would do;
	// relogin, that a refresh token was refused on the way.
	loginNeeded error
	relogin     bool
}

// underLock is step 1. It returns nil and no error when only a login
// would do.
func (t *turn) underLock() (*held, error) {
	k := t.k
	if k.opts.cache == nil {
		return t.redeem(t.ctx, nil)
	}
	cctx, cancel := k.cacheContext(t.ctx)
	defer cancel()
	var (
		got   *held
		ferr  error
		ran   bool
		kept  *oauth2.Token // what the entry holds if nothing is written
		wrote *oauth2.Token // what fn asked the cache to keep
		clear bool          // fn asked the cache to drop the entry
	)
	err := k.opts.cache.Update(cctx, t.cacheKey, func(cur *oauth2.Token) (*oauth2.Token, error) {
		ran, kept = true, cur
		if got = t.adopt(cur); got != nil {
			return nil, nil
		}
		if got, ferr = t.redeem(cctx, cur); ferr != nil {
			return nil, ferr
		}
		switch {
		case got != nil:
			wrote = got.tok
			return got.tok, nil
		case t.relogin && cur != nil && cur.RefreshToken != "":
			clear = true
			return &oauth2.Token{}, nil // the refused login leaves the cache
		}
		return nil, nil
	})
	switch {
	case ferr != nil:
		return nil, ferr
	case !ran:
		// No lock. A cache is never a reason to fail, but a refresh token
		// redeemed without the lock may be one another process is
		// redeeming under it: that would cost the whole login.
		if b := t.base(nil); b != nil && b.RefreshToken != "" {
			return nil, fmt.Errorf("the token cache could not be used (%w); its refresh token is redeemed only under the cache's lock, where another process may be redeeming it", err)
		}
		k.opts.logger.Warn("authenticator: the token cache could not be used", "endpoint", k.endpoint, "error", err)
		return t.redeem(t.ctx, nil)
	case err != nil:
		// The entry still holds what it held.
		k.opts.logger.Warn("authenticator: writing the token cache failed", "endpoint", k.endpoint, "error", err)
		k.sawCache(kept)
	case wrote != nil:
		k.sawCache(wrote)
	case clear:
		k.sawCache(nil)
	}
	return got, nil
}

// adopt returns cur as the Keeper's token when it is another token than
// the Keeper's own (another process saved it) and still valid for a
// while: it costs no request.
func (t *turn) adopt(cur *oauth2.Token) *held {
	k := t.k
	if cur == nil || cur.AccessToken == "" || (t.prev != nil && cur.AccessToken == t.prev.AccessToken) {
		return nil
	}
	// Only a token whose lifetime is known, and still valid for a while:
	// one of unknown lifetime is used until a server rejects it, which a
	// process that only reads the cache (grpcauth token) never sees.
	now := k.opts.now()
	if cur.Expiry.IsZero() || !now.Add(k.opts.minCachedLife).Before(cur.Expiry) {
		return nil
	}
	c, err := k.keep(t.key, cur, now, false, t.cfg.TokenEndpoint)
	if err != nil {
		return nil
	}
	k.sawCache(cur)
	k.stats.cacheHits.Add(1)
	k.opts.logger.Debug("authenticator: using the cached token", "endpoint", k.endpoint)
	return c
}

// redeem asks the flow for a token without a login: a flow that asks no
// person makes its usual request; one that does redeems the refresh token
// of base (see base). It returns nil and no error when only a login would
// do.
func (t *turn) redeem(ctx context.Context, cur *oauth2.Token) (*held, error) {
	k := t.k
	base := t.base(cur)
	if !noLogin(ctx) {
		ctx = nologin.Context(ctx)
	}
	start := k.opts.now()
	tok, err := t.request(ctx, base)
	if errors.Is(err, errLoginNeeded) {
		t.loginNeeded = err
		if base != nil && base.RefreshToken != "" {
			t.relogin = true
			dead := base.RefreshToken
			k.deadRefresh.Store(&dead)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return t.finish(tok, base, start)
}

// base is the token whose refresh token a flow may redeem: the cache's
// entry when another process wrote it since this Keeper last looked (its
// refresh token is the newest), else the Keeper's own; never with a
// refresh token the server refused.
func (t *turn) base(cur *oauth2.Token) *oauth2.Token {
	b := t.prev
	if cur != nil && cur.RefreshToken != "" {
		if seen := t.k.cacheSeen.Load(); b == nil || seen == nil || *seen != cur.AccessToken {
			b = cur
		}
	}
	if b != nil && b.RefreshToken != "" {
		if dead := t.k.deadRefresh.Load(); dead != nil && *dead == b.RefreshToken {
			c := *b
			c.RefreshToken = ""
			b = &c
		}
	}
	return b
}

// login is step 2: a login, for a caller who may ask a person.
func (t *turn) login() (*held, error) {
	k := t.k
	if t.loginNeeded == nil || noLogin(t.ctx) {
		// A background refresh never logs in; the call that needs a
		// token after the expiry does.
		return nil, cmpErr(t.loginNeeded, errLoginNeeded)
	}
	if k.opts.cache != nil {
		cctx, cancel := k.cacheContext(t.ctx)
		cur, _ := k.opts.cache.Load(cctx, t.cacheKey)
		cancel()
		if c := t.adopt(cur); c != nil {
			return c, nil
		}
	}
	ctx := t.ctx
	if t.relogin {
		ctx = context.WithValue(ctx, reloginKey{}, true)
	}
	var base *oauth2.Token
	if t.prev != nil {
		c := *t.prev
		c.RefreshToken = ""
		base = &c
	}
	start := k.opts.now()
	tok, err := t.request(ctx, base)
	if err != nil {
		return nil, err
	}
	c, err := t.finish(tok, nil, start)
	if err != nil {
		return nil, err
	}
	if k.opts.cache != nil {
		cctx, cancel := k.cacheContext(t.ctx)
		defer cancel()
		if err := k.opts.cache.Save(cctx, t.cacheKey, c.tok); err != nil {
			k.opts.logger.Warn("authenticator: writing the token cache failed", "endpoint", k.endpoint, "error", err)
		} else {
			k.sawCache(c.tok)
		}
	}
	return c, nil
}

// transientRetries is how many times a token request that failed
// transiently (a 5xx without an OAuth2 error, 429, a refused or reset
// connection) is sent again, after the transient backoff (200 ms),
// doubling and jittered, or the server's Retry-After; never past ctx's
// deadline, and never a login: a person is not asked twice.
const transientRetries = 2

// request runs the flow, again after a transient failure (see
// transientRetries). A request that redeems a refresh token is sent again
// only when it surely did not reach the server (a refused connection, 429,
// 503 with Retry-After): one whose answer was lost may have rotated the
// refresh token already, and sending it again would be a reuse, which
// revokes the whole login.
func (t *turn) request(ctx context.Context, base *oauth2.Token) (*oauth2.Token, error) {
	retry := noLogin(ctx) || !asksPerson(t.k.flow)
	redeems := base != nil && base.RefreshToken != ""
	for attempt := 0; ; attempt++ {
		tok, err := t.requestOnce(ctx, base)
		wait, transient, undelivered := transientWait(err)
		if !retry || !transient || (redeems && !undelivered) || attempt == transientRetries {
			return tok, err
		}
		wait = max(wait, jitter(t.k.opts.transientBackoff<<attempt))
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return tok, err
		}
		t.k.opts.logger.Debug("authenticator: the token request failed transiently; trying again", "endpoint", t.k.endpoint, "in", wait, "error", err)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return tok, err
		}
	}
}

// transientWait reports whether err is a token request's transient
// failure, how long the server asked to wait (Retry-After), if it did, and
// whether the request surely did not reach the server.
func transientWait(err error) (wait time.Duration, transient, undelivered bool) {
	var te *TokenError
	if !errors.As(err, &te) {
		return 0, false, false
	}
	return te.retryAfter, te.transient, te.undelivered
}

// jitter returns d give or take a half, at random.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// requestOnce runs the flow once, with the Keeper's HTTP client and
// logger.
func (t *turn) requestOnce(ctx context.Context, base *oauth2.Token) (*oauth2.Token, error) {
	k := t.k
	if !noLogin(ctx) || base != nil && base.RefreshToken != "" || !asksPerson(k.flow) {
		k.stats.requests.Add(1)
		k.opts.logger.Debug("authenticator: requesting token", "endpoint", k.endpoint, "token_url", redactURL(t.cfg.TokenEndpoint), "scopes", t.cfg.Scopes, "audience", t.cfg.Audience)
	}
	tok, err := k.flow.Token(context.WithValue(context.WithValue(ctx, oauth2.HTTPClient, k.http), loggerKey{}, k.opts.logger), t.cfg, base)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) && errors.Is(te.Err, context.DeadlineExceeded) && te.Detail != "" {
			te.Detail += fmt.Sprintf(" of %s", k.timeout())
		}
		return nil, err
	}
	return tok, nil
}

// finish keeps a token the flow got, started at start; a refresh answer
// without a refresh token keeps base's (RFC 6749 §6).
func (t *turn) finish(tok, base *oauth2.Token, start time.Time) (*held, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, &TokenError{TokenURL: redactURL(t.cfg.TokenEndpoint), Detail: "the answer holds no access_token"}
	}
	if tok.RefreshToken == "" && base != nil {
		tok.RefreshToken = base.RefreshToken
	}
	return t.k.keep(t.key, tok, start, true, t.cfg.TokenEndpoint)
}

// asksPerson reports whether f is a flow of this package that may ask a
// person (a browser login, a device code).
func asksPerson(f Flow) bool {
	_, ok := f.(timeoutFlow)
	return ok
}

// sawCache notes the cache's entry as this Keeper last read or wrote it.
func (k *Keeper) sawCache(tok *oauth2.Token) {
	if tok == nil {
		k.cacheSeen.Store(nil)
		return
	}
	s := tok.AccessToken
	k.cacheSeen.Store(&s)
}

// cmpErr returns the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
