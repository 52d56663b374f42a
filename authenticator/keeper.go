package authenticator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/flight"
	"github.com/flyteauth/grpcauth/internal/nologin"
	"github.com/flyteauth/grpcauth/internal/notyet"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Keeper keeps one token fresh for any Flow and hands it to the
// interceptors and the standard views (TokenSource, PerRPCCredentials,
// Transport): it is an Authenticator. It is safe for concurrent use.
//
// The Keeper decides when a token is needed: at the first call, when the
// server rejected the current one (Rejected), when it enters its
// refresh margin (a background refresh; callers go on with the still-valid
// token) and when it has expired (callers wait, bounded by their context).
// However many callers need a token at once, the Flow is asked once. With a
// TokenCache, the Keeper reads the cache before its first request and
// writes every token it gets.
//
// While a token is valid, Credential is a lock-free load of a precomputed
// header pair.
type Keeper struct {
	endpoint string
	store    configstore.ClientConfigStore
	flow     Flow
	opts     options
	http     *http.Client

	// life ends when Close is called; every token request ends with it.
	life  context.Context
	close context.CancelFunc

	current atomic.Pointer[held] // nil until the first token
	group   flight.Group[*held]  // one token request at a time
	stats   statCounters
	// cacheSeen is the access token of the cache's entry as this Keeper
	// last read or wrote it; deadRefresh, a refresh token the server
	// refused. Both change only within a flight (fetch.go).
	cacheSeen, deadRefresh atomic.Pointer[string]

	mu       sync.Mutex // guards lastFail, refusals, streak, lastRejection, and held.rejected and retryAt
	lastFail failure
	refusals int // token requests refused for good in a row
	// streak counts tokens rejected in a row, each less than a minute
	// after the rejection before; it sets the backoff of Rejected.
	streak        int32
	lastRejection time.Time
}

// held is one token, ready to attach. It is immutable once stored,
// but for its gates.
type held struct {
	key, value string
	tok        *oauth2.Token
	obtained   time.Time // when it was asked for: the rejection backoff counts from it
	arrived    time.Time // when it came, for Stats
	expiry     time.Time // zero: unknown, used until rejected
	refreshAt  time.Time // zero: no proactive refresh
	// nextBackground is the unix-nano time before which no background
	// refresh starts; math.MaxInt64 while one runs.
	nextBackground atomic.Int64
	// accepted is set once a call carrying this token succeeded.
	accepted atomic.Bool
	// rejected is set once the server rejected the token; retryAt is then
	// the time before which a rejection asks for no new token (the
	// rejection backoff). Keeper.mu guards both.
	rejected bool
	retryAt  time.Time
}

// maxDefaultMargin caps the default refresh margin, a fifth of the
// token's lifetime.
const maxDefaultMargin = 10 * time.Second

// ErrClosed is returned by a Keeper after Close.
var ErrClosed = errors.New("keeper closed")

// New returns a Keeper that gets its tokens from flow for the service at
// endpoint, resolving the client configuration through store. endpoint
// names the service in logs and errors and, with the client id, keys the
// token cache. New does no network I/O: the first call does.
func New(endpoint string, store configstore.ClientConfigStore, flow Flow, opts ...Option) (*Keeper, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil { // a nil option is no option, not a panic
			opt(&o)
		}
	}
	switch {
	case strings.TrimSpace(endpoint) == "":
		return nil, errors.New("authenticator: endpoint is empty")
	case store == nil:
		return nil, errors.New("authenticator: config store is nil")
	case flow == nil:
		return nil, errors.New("authenticator: flow is nil")
	}
	if o.headerSet && !validHeaderKey(o.headerKey) {
		return nil, fmt.Errorf("authenticator: WithHeaderKey: %q is not a valid gRPC metadata key", o.headerKey)
	}
	if o.tokenURL != "" {
		if err := checkURL(o.tokenURL); err != nil {
			return nil, fmt.Errorf("authenticator: WithTokenURL: %w", err)
		}
	}
	hc := newHTTPClient(&o)
	life, cancel := context.WithCancel(context.Background())
	return &Keeper{
		endpoint: endpoint,
		store:    store,
		flow:     flow,
		opts:     o,
		http:     hc,
		life:     life,
		close:    cancel,
	}, nil
}

// errNoToken is wrapped by the error of Credential when the Keeper holds no
// token and was not asked to get one yet (WithLazyStart): the one error with
// which the interceptors send a call without a token.
var errNoToken = notyet.Err

// Credential returns the header key and "Bearer <token>" of the current
// token. Before the first token it gets one, bounded by ctx, and fails
// with the token request's error when that fails (the interceptors then
// end the call unsent, with that error); with WithLazyStart it fails
// instead until a rejection asked for a token, and the interceptors send
// such calls without one. While the token is valid this is a lock-free
// load, and it starts a background refresh once the token is within its
// refresh margin. Only a token that has really expired makes the caller
// wait for a new one; if that fails, the expired value is returned and the
// server's rejection drives the retry.
func (k *Keeper) Credential(ctx context.Context) (key, value string, err error) {
	c := k.current.Load()
	if c == nil {
		if k.opts.lazy {
			return "", "", fmt.Errorf("authenticator: %w: none is got before a server asks for one", errNoToken)
		}
		// Within a pause after a failure, the call gets that failure
		// rather than a token request of its own.
		if err := k.paused(); err != nil {
			return "", "", err
		}
		if err := k.recentFailure(false); err != nil {
			return "", "", err
		}
		c, err := k.refresh(ctx, nil, causeFirstUse)
		if err != nil {
			return "", "", err
		}
		return c.key, c.value, nil
	}
	if c.refreshAt.IsZero() {
		return c.key, c.value, nil
	}
	now := k.opts.now()
	if now.Before(c.refreshAt) {
		return c.key, c.value, nil
	}
	if now.Before(c.expiry) {
		k.startBackgroundRefresh(c, now)
		return c.key, c.value, nil
	}
	if n, err := k.refresh(ctx, c, causeExpired); err == nil {
		return n.key, n.value, nil
	}
	return c.key, c.value, nil
}

// RefreshCredentials requests a new token, or joins the request already in
// flight. It waits until the request ends or ctx is done; a caller that
// stops waiting does not cancel the request for the others, which is bounded
// by the token timeout.
func (k *Keeper) RefreshCredentials(ctx context.Context) error {
	_, err := k.refresh(ctx, nil, causeExplicit)
	return err
}

// Token returns the current token, getting one first if none is held or it
// has expired. The token is the caller's copy.
func (k *Keeper) Token(ctx context.Context) (*oauth2.Token, error) {
	c := k.current.Load()
	if c == nil || (!c.expiry.IsZero() && !k.opts.now().Before(c.expiry)) {
		cause := causeExpired
		if c == nil {
			cause = causeFirstUse
		}
		var err error
		if c, err = k.refresh(ctx, c, cause); err != nil {
			return nil, err
		}
	} else if !c.refreshAt.IsZero() && !k.opts.now().Before(c.refreshAt) {
		k.startBackgroundRefresh(c, k.opts.now())
	}
	t := *c.tok
	t.RefreshToken = "" // the refresh token stays with the Keeper
	return &t, nil
}

// refresh runs one token request for all concurrent callers and returns
// the token it got. seen is the token the caller saw (nil for none): unless
// the caller asked for a new token outright (causeExplicit), the request
// is skipped when seen is no longer current by the time the flight starts,
// and the caller takes the current token; so concurrent first callers
// cause one request, and a rejection of a token already replaced none.
//
// A caller may join a flight that another caller started for an older
// token: one that ends without a request, or one that ends with seen
// itself (it began before seen was refused), or a background refresh that
// ended needing a login. The caller then goes round again rather than
// return without a new token.
func (k *Keeper) refresh(ctx context.Context, seen *held, cause refreshCause) (*held, error) {
	if k.life.Err() != nil {
		return nil, fmt.Errorf("authenticator: %w", ErrClosed)
	}
	explicit := cause == causeExplicit
	joinedBackground := false
	for {
		c, err := k.group.Do(ctx, k.life, k.timeout(), func(fctx context.Context) (*held, error) {
			if !explicit && k.current.Load() != seen {
				return nil, nil // skipped: what the caller saw was replaced already
			}
			if !explicit {
				if err := k.paused(); err != nil {
					return nil, err
				}
			}
			k.stats.count(cause)
			if cause == causeProactive {
				fctx = nologin.Context(fctx)
			}
			return k.fetch(fctx)
		})
		switch {
		case errors.Is(err, flight.ErrStoppedWaiting):
			return nil, fmt.Errorf("authenticator: waiting for a token: %w", context.Cause(ctx))
		case err != nil && cause != causeProactive && !joinedBackground && !noLogin(ctx) && errors.Is(err, errLoginNeeded):
			// A background refresh may not log in; this caller may.
			joinedBackground = true
			continue
		case err != nil:
			return nil, err
		case c == nil: // a skipped flight, this caller's or another's
			if cur := k.current.Load(); !explicit && cur != seen && cur != nil {
				return cur, nil
			}
			continue
		case !explicit && c == seen:
			// The flight this caller joined had started before seen was
			// refused, and ended with seen itself: ask again.
			continue
		}
		return c, nil
	}
}

// timeout bounds one token request: the flow's own, for a flow that waits
// for a person, else the token timeout.
func (k *Keeper) timeout() time.Duration {
	if tf, ok := k.flow.(timeoutFlow); ok {
		if d := tf.flowTimeout(); d > 0 {
			return d
		}
	}
	return k.opts.timeout
}

func (k *Keeper) startBackgroundRefresh(c *held, now time.Time) {
	next := c.nextBackground.Load()
	if now.UnixNano() < next || !c.nextBackground.CompareAndSwap(next, math.MaxInt64) {
		return
	}
	go func() {
		_, err := k.refresh(context.Background(), c, causeProactive)
		switch {
		case errors.Is(err, errLoginNeeded):
			// Nothing but a login would do: the call that needs a
			// token after the expiry starts it; no more tries until then.
		case err != nil:
			// Try again after a pause, not on every call.
			c.nextBackground.Store(k.opts.now().Add(k.opts.retryPause).UnixNano())
		}
	}()
}

// errPrefix starts the text of every error a Keeper returns, once.
const errPrefix = "authenticator: "

// fetch resolves the client config and gets a token, from the cache or the
// flow. Its errors are prefixed with "authenticator: ", once: an error of
// a flow of this package (or of a Flow that says so itself) that already
// starts with it is not prefixed again.
func (k *Keeper) fetch(ctx context.Context) (*held, error) {
	c, err := k.fetchToken(ctx)
	if err != nil {
		if k.life.Err() != nil {
			err = ErrClosed
		}
		k.stats.failures.Add(1)
		k.opts.logger.Warn("authenticator: token refresh failed", "endpoint", k.endpoint, "error", err)
		if !strings.HasPrefix(err.Error(), errPrefix) {
			err = fmt.Errorf("%s%w", errPrefix, err)
		}
		k.failed(err, !noLogin(ctx))
		return nil, err
	}
	k.mu.Lock()
	k.lastFail, k.refusals = failure{}, 0
	k.mu.Unlock()
	return c, nil
}

// cacheContext bounds one cache read or write by the token timeout, even
// within a login, whose request has the login's (much longer) timeout.
func (k *Keeper) cacheContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, k.opts.timeout)
}

// keep makes tok the current token, asked for at start: received from the
// flow just now (received), or loaded from the cache. Its lifetime counts
// from start (for a login, the login's start: early rather than late), as
// does the backoff after its rejection; it arrived now.
func (k *Keeper) keep(key string, tok *oauth2.Token, start time.Time, received bool, tokenURL string) (*held, error) {
	if tt := tok.TokenType; tt != "" && !strings.EqualFold(tt, "bearer") {
		// FlyteAdmin knows no other kind of token, and flytekit sends any
		// token as Bearer: so do we, with a warning.
		k.opts.logger.Warn("authenticator: token_type is not Bearer; sending the token as a Bearer token", "endpoint", k.endpoint, "token_type", clip(tt, 32))
	}
	c := &held{key: key, value: "Bearer " + tok.AccessToken, tok: tok, obtained: start, arrived: k.opts.now()}
	if !validHeaderValue(c.value) {
		// gRPC refuses such a value with codes.Internal on every call, which
		// no refresh would follow: the client would be stuck with it.
		return nil, &TokenError{TokenURL: redactURL(tokenURL), Detail: "the access_token of the answer holds characters a gRPC header cannot carry"}
	}
	if life := lifetime(tok, k.opts.now(), received); life > 0 {
		c.expiry = start.Add(life)
		c.refreshAt = c.expiry.Add(-k.margin(life))
	}
	_, hasExpiresIn := expiresIn(tok)
	if (received && hasExpiresIn || tok.Expiry.IsZero()) && !tok.Expiry.Equal(c.expiry) {
		// The token carries the expiry the Keeper goes by: for an answer
		// with expires_in, not the Expiry x/oauth2 computed (by another
		// clock, and overflowed for a huge expires_in; zero when the
		// lifetime is unknown), so that the cache and the TokenSource
		// view see what the Keeper sees.
		t := *tok // the caller's token is not changed
		t.Expiry = c.expiry
		c.tok = &t
	}
	k.current.Store(c)
	k.opts.logger.Debug("authenticator: got token", "endpoint", k.endpoint, "expiry", c.expiry)
	return c, nil
}

// resolve merges the options into the config store's answer: explicit
// options win. It also checks that the token endpoint may receive
// credentials.
func (k *Keeper) resolve(ctx context.Context) (*configstore.ClientConfig, string, error) {
	cfg, err := k.store.GetClientConfig(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("resolving client config: %w", err)
	}
	if k.opts.tokenURL != "" {
		cfg.TokenEndpoint = k.opts.tokenURL
	}
	if k.opts.scopesSet {
		cfg.Scopes = k.opts.scopes
	}
	if k.opts.audience != "" {
		cfg.Audience = k.opts.audience
	}
	if cf, ok := k.flow.(clientIDFlow); ok && cf.flowClientID() != "" {
		cfg.ClientID = cf.flowClientID()
	}
	key := strings.ToLower(firstNonEmpty(k.opts.headerKey, cfg.HeaderKey, DefaultHeaderKey))
	if !validHeaderKey(key) {
		return nil, "", fmt.Errorf("the config store's header key %q is not a valid gRPC metadata key", clip(key, 64))
	}
	if cfg.TokenEndpoint != "" {
		if err := k.checkCleartext("token endpoint", cfg.TokenEndpoint); err != nil {
			return nil, "", err
		}
	}
	return cfg, key, nil
}

// checkCleartext refuses a plain http:// URL on a host other than
// loopback, unless WithInsecure was given: a client secret or refresh
// token sent there travels in cleartext.
func (k *Keeper) checkCleartext(what, raw string) error {
	if k.opts.allowHTTP {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q cannot be parsed", what, clip(redactURL(raw), 200))
	}
	if u.Scheme == "https" || transportsec.LoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: %s %s is plain %s on a host that is not loopback, so credentials would travel in cleartext; use https, or allow plaintext explicitly (Flyte's insecure: true)", ErrInsecureEndpoint, what, redactURL(raw), u.Scheme)
}

// ErrInsecureEndpoint reports a token endpoint or HTTP API URL that would
// carry credentials in cleartext.
var ErrInsecureEndpoint = errors.New("insecure endpoint")

// margin is how long before expiry the background refresh starts.
func (k *Keeper) margin(life time.Duration) time.Duration {
	m := k.opts.margin
	if m == 0 {
		m = min(life/5, maxDefaultMargin)
	}
	return min(m, life/2)
}

// Close ends the Keeper: a token request in flight and any background
// refresh stop promptly, and later requests fail with ErrClosed. The
// current token stays attached until it expires. Close also closes the
// idle connections of the token HTTP client. It is safe to call more than
// once.
func (k *Keeper) Close() error {
	k.close()
	k.http.CloseIdleConnections()
	return nil
}

// Format describes the Keeper for every fmt verb, %#v included, without
// any secret or token.
func (k *Keeper) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "authenticator.Keeper{endpoint: %q, flow: %v}", k.endpoint, k.flow)
}

var _ Authenticator = (*Keeper)(nil)
