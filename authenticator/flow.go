package authenticator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/nologin"
)

// Flow gets a new token: it is what differs between client credentials,
// PKCE, the device code and an external command. The Keeper decides when
// to ask (first use, rejection, expiry, the proactive margin), makes N
// concurrent callers cause one call of Token, caches the result and hands
// it to the interceptors and the standard views; a Flow does none of that.
//
// Token is given:
//   - ctx, bounded by the token timeout (a login that waits for a person,
//     by its own timeout) and carrying the Keeper's HTTP client under
//     oauth2.HTTPClient, so that x/oauth2 uses it;
//   - cfg, the resolved client configuration: the config store's answer
//     with the Keeper's options (token URL, scopes, audience) applied, the
//     token endpoint already checked for transport security;
//   - prev, the last token the Keeper held (from memory or its cache), or
//     nil: a flow with refresh tokens uses prev.RefreshToken first.
//
// Token returns a token whose AccessToken is set. Its Expiry, or an
// "expires_in" extra, gives the lifetime; a token with neither is used until
// the server rejects it. Errors should be a *TokenError where an OAuth2
// server answered, and never carry a secret or a token.
type Flow interface {
	Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error)
}

// noLogin reports whether a token request on ctx may not ask a person: a
// background refresh (the refresh margin; no caller waits for it), the
// Keeper's turn under the cache lock, or a caller with nobody to ask
// (`grpcauth token`). A flow of this package that would have to ask a
// person (a browser login, a device code) fails with errLoginNeeded
// instead; the login starts when a call that may log in needs a token.
func noLogin(ctx context.Context) bool { return nologin.Forbidden(ctx) }

// errLoginNeeded is the error of a request that may not log in when only a
// new login would get a token.
var errLoginNeeded = fmt.Errorf("%w; it starts when a call needs one, not in the background", nologin.ErrNeeded)

// loginOrWait starts login, telling the person first (Relogin) when the
// saved login was refused (why, or a refusal the Keeper saw: reloginKey),
// unless ctx may not log in (a background refresh, or the Keeper's turn
// under the cache lock): then it returns errLoginNeeded, with why when
// there is one.
func loginOrWait(ctx context.Context, why error, p Prompter, login func() (*oauth2.Token, error)) (*oauth2.Token, error) {
	if !noLogin(ctx) {
		if why != nil || ctx.Value(reloginKey{}) != nil {
			p.Relogin(ctx)
		}
		return login()
	}
	if why != nil {
		return nil, fmt.Errorf("%w: %w", errLoginNeeded, why)
	}
	return nil, errLoginNeeded
}

// reloginKey marks the context of a login that follows a refused refresh
// token, which the Keeper saw under the cache lock.
type reloginKey struct{}

// refreshRefused reports whether the token endpoint refused a refresh
// token for good, so that only a new login would do: an OAuth2 error
// answer (an "error" field, whatever the status: FlyteAdmin's own
// authorization server answers a refresh token past its lifetime with
// HTTP 500 server_error, not invalid_grant), or any 4xx. A network error
// or a 5xx without an OAuth2 error is transient.
func refreshRefused(err error) bool {
	var te *TokenError
	if errors.As(err, &te) {
		return te.ErrorCode != "" || (te.StatusCode >= 400 && te.StatusCode < 500)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return re.ErrorCode != "" || (status >= 400 && status < 500)
	}
	return false
}

// timeoutFlow is a flow of this package that waits for a person (a browser
// login, a device code): the Keeper bounds its Token calls by its own
// timeout instead of the token timeout.
type timeoutFlow interface {
	Flow
	flowTimeout() time.Duration
}

// clientIDFlow is a flow of this package that authenticates as a client id
// of its own, which then wins over the config store's public client id in
// cfg and in the cache key.
type clientIDFlow interface {
	Flow
	flowClientID() string
}

// Prompter is what an interactive login (NewPKCEFlow, NewDeviceFlow) shows
// a person; package loginui has a terminal's. Nothing a flow shows through
// it goes to a log. Every string in its arguments that a server chose (a
// URL, a code, an error description) is the server's, unchecked: a Prompter
// cleans it before a terminal or a page shows it. Implementations are safe
// for concurrent use.
type Prompter interface {
	// Browse shows authURL, the page of a browser login, and opens a
	// browser on it where it can. The flow calls it in a goroutine of its
	// own and waits for it before the login ends; it returns when ctx ends
	// at the latest.
	Browse(ctx context.Context, authURL string)
	// DeviceCode shows where to approve a device login, and its code.
	DeviceCode(ctx context.Context, d *oauth2.DeviceAuthResponse)
	// Relogin says that the saved login was refused, so a new one starts.
	Relogin(ctx context.Context)
	// LoggedIn says that the login is done.
	LoggedIn(ctx context.Context)
	// CallbackPage writes the body of the HTML page the browser shows at
	// the end of a browser login: err is nil when the login succeeded,
	// else why it failed (such as an *AuthorizationError).
	CallbackPage(w io.Writer, err error)
}

// loggerKey carries the Keeper's logger to the flows of this package in the
// context of Token.
type loggerKey struct{}

// loggerFrom returns the Keeper's logger in ctx, or one that discards.
func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// audienceParams are the request parameters that carry cfg's audience, as
// cfg.AudienceParam says; nil without an audience.
func audienceParams(cfg *configstore.ClientConfig) url.Values {
	if cfg.Audience == "" {
		return nil
	}
	v := url.Values{}
	switch strings.ToLower(strings.TrimSpace(cfg.AudienceParam)) {
	case "resource":
		v.Set("resource", cfg.Audience)
	case "both":
		v.Set("audience", cfg.Audience)
		v.Set("resource", cfg.Audience)
	default:
		v.Set("audience", cfg.Audience)
	}
	return v
}

// audienceOptions are audienceParams as options of an oauth2 request; with
// onlyResource, just the resource indicator (RFC 8707 sends it with the
// token request too; Auth0's audience goes with the first request only).
func audienceOptions(cfg *configstore.ClientConfig, onlyResource bool) []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	for name, vs := range audienceParams(cfg) {
		if !onlyResource || name == "resource" {
			opts = append(opts, oauth2.SetAuthURLParam(name, vs[0]))
		}
	}
	return opts
}
