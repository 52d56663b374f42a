package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/loginui"
	"github.com/flyteauth/grpcauth/tokencache"
)

const loginSummary = `Usage: grpcauth login [flags]

Logs in through the browser (authType Pkce, the default: the authorization
code grant with PKCE) or with a code entered on another device (authType
DeviceFlow), and keeps the token, with its refresh token, in the token
cache, so that later runs ask no person until the refresh token is refused.
The authorization URL, or the device code, is always printed on stderr; a
browser is opened where one can be (xdg-open, open, rundll32). The
authorization, device and token endpoints,
the public client id and the redirect URI come from FlyteAdmin's
AuthMetadataService unless the configuration names them.

Tokens are kept in one file per endpoint, client id, token endpoint,
scopes and audience, mode 0600, under --token-cache-dir (default: the user
cache directory, such as ~/.cache/grpcauth/tokens), or in the OS keyring
with admin.tokenCache: keyring.

Over SSH or in a container, where the browser cannot reach this machine,
paste the address the browser ends on. With --from-flytectl, the login
flytectl keeps in the OS keyring for the same endpoint is taken instead of
a new one.`

const logoutSummary = `Usage: grpcauth logout [flags]

Removes the cached token of the configured endpoint and client id (and
the token endpoint, scopes and audience the deployment or the config
names, which the cache key holds: the deployment is asked), and revokes it
at the identity provider (RFC 7009): the refresh token, then the access
token. The client id is the configured one, else the one the deployment
advertises. The revocation endpoint comes from the deployment's
metadata, else from the discovery document of the issuer it names
(FlyteAdmin's own metadata names none); it says whether the token was
revoked, and if not, why.`

// cacheFlags are the flags that choose the token cache, shared by login
// and logout.
type cacheFlags struct {
	dir string
}

func (c *cacheFlags) register(fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&c.dir, "token-cache-dir", "", "`directory` of the token cache (default: the user cache directory's grpcauth/tokens)")
}

// open opens the token cache, in the keyring when cfg's tokenCache says so.
func (c *cacheFlags) open(stderr io.Writer, env environment, cfg grpcauth.Config) (*tokencache.File, error) {
	opts := []tokencache.Option{tokencache.WithLogger(warnLogger(stderr))}
	if strings.EqualFold(strings.TrimSpace(cfg.TokenCache), "keyring") {
		opts = append(opts, tokencache.WithKeyring())
	}
	if dir := cmp.Or(c.dir, env.cacheDir); dir != "" {
		opts = append(opts, tokencache.WithDir(dir))
	}
	return tokencache.NewFile(opts...)
}

// warnLogger shows warnings (such as an unreadable cache file) on stderr,
// but for the failures of a token request, a token command and a metadata
// fetch: the command reports those itself, once, as its error.
func warnLogger(w io.Writer) *slog.Logger {
	return slog.New(unreported{slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})})
}

// unreported drops the records that repeat a command's own error.
type unreported struct{ slog.Handler }

func (h unreported) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Message == "authenticator: token refresh failed", r.Message == "authenticator: token command failed",
		strings.HasPrefix(r.Message, "configstore: fetching ") && strings.HasSuffix(r.Message, " failed"):
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h unreported) WithAttrs(attrs []slog.Attr) slog.Handler {
	return unreported{h.Handler.WithAttrs(attrs)}
}
func (h unreported) WithGroup(name string) slog.Handler { return unreported{h.Handler.WithGroup(name)} }

func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("login", loginSummary, stderr)
	var cf configFlags
	cf.register(fs)
	var cache cacheFlags
	cache.register(fs)
	timeout := fs.Duration("timeout", 0, "give up when the login is not done within this `duration` (default: the config's pkceConfig.timeout or deviceFlowConfig.timeout, else 2m for the browser, 10m for the device code)")
	noBrowser := fs.Bool("no-browser", false, "only print the URL, do not open a browser")
	fromFlytectl := fs.Bool("from-flytectl", false, "take the login flytectl keeps in the OS keyring for this endpoint instead of logging in")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *timeout < 0 || (*timeout == 0 && flagSet(fs, "timeout")) {
		fmt.Fprintln(stderr, "grpcauth login: --timeout must be positive")
		return exitUsage
	}
	loaded, err := cf.load(fs, env)
	if err != nil {
		sayErr(stderr, "login", err)
		return exitFail
	}
	cfg := loaded.Config
	mode, err := cfg.AuthMode()
	if err != nil {
		sayErr(stderr, "login", err)
		return exitFail
	}
	if mode != "" && mode != grpcauth.AuthTypePkce && mode != grpcauth.AuthTypeDeviceFlow {
		fmt.Fprintf(stderr, "grpcauth login: the configuration selects %s; login runs an interactive flow: the browser login (admin.authType: Pkce, the default without a clientId) or the device code (DeviceFlow)\n", describeMode(cfg))
		return exitFail
	}
	if *timeout > 0 {
		cfg.PkceConfig.Timeout, cfg.DeviceFlowConfig.Timeout = *timeout, *timeout
	}
	files, err := cache.open(stderr, env, cfg)
	if err != nil {
		sayErr(stderr, "login", err)
		return exitFail
	}
	// The login logs in afresh even when a token is cached, and replaces
	// it: its cache is written, never read.
	c, err := grpcauth.New(cfg,
		grpcauth.WithTokenCache(freshLogin{files}),
		grpcauth.WithLogger(warnLogger(stderr)),
		grpcauth.WithPrompter(&loginui.Terminal{Out: stderr, Browser: env.browser, NoBrowser: *noBrowser, Paste: env.stdin}))
	if err != nil {
		sayErr(stderr, "login", err)
		return exitFail
	}
	defer c.Close()
	loginTimeout := cmp.Or(cfg.PkceConfig.Timeout, 2*time.Minute)
	if mode == grpcauth.AuthTypeDeviceFlow {
		loginTimeout = cmp.Or(cfg.DeviceFlowConfig.Timeout, 10*time.Minute)
	}
	ctx, cancel := context.WithTimeout(ctx, loginTimeout+30*time.Second)
	defer cancel()
	err = func() error {
		id, err := loginClientID(ctx, cfg, c.ConfigStore)
		if err != nil {
			return err
		}
		if *fromFlytectl {
			// flytectl's login, from the OS keyring, instead of a new one.
			tok, err := flytectlLogin(cfg.Endpoint)
			if err != nil {
				return err
			}
			warnOtherClient(stderr, tok.AccessToken, id)
			key, err := c.Authenticator.CacheKey(ctx)
			if err != nil {
				return err
			}
			if err := files.Save(ctx, key, tok); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Took flytectl's login for %s from the OS keyring.\n", cfg.Endpoint)
		} else if err := c.Authenticator.RefreshCredentials(ctx); err != nil {
			return err
		}
		key, err := c.Authenticator.CacheKey(ctx)
		if err != nil {
			return err
		}
		tok, err := files.Load(ctx, key)
		if err != nil || tok == nil {
			return fmt.Errorf("the token could not be kept in %s; see the warnings above", files.Dir())
		}
		fmt.Fprintf(stdout, "Logged in to %s as client %s.\n", cfg.Endpoint, id)
		fmt.Fprintf(stdout, "The token is kept in %s%s%s.\n", files.Path(key), validity(tok), refreshNote(tok))
		return nil
	}()
	if err != nil {
		sayErr(stderr, "login", err)
		var ae *authenticator.AuthorizationError
		if errors.As(err, &ae) {
			fmt.Fprintf(stderr, "OAuth error: %s\n", redact.Clip(ae.ErrorCode, 64))
		}
		return exitFail
	}
	return exitOK
}

// warnOtherClient warns when flytectl's access token, a JWT, names
// another client than id, the one this configuration logs in as: the
// identity provider refuses a refresh token to any client but its own.
func warnOtherClient(stderr io.Writer, token, id string) {
	claims, ok := unverifiedClaims(token)
	if !ok {
		return
	}
	if v, ok := claimedClient(claims); ok {
		if issued := fmt.Sprint(v); issued != id {
			fmt.Fprintf(stderr, "grpcauth login: warning: flytectl's login was issued to client %q, but this configuration logs in as %q: once its access token expires, the identity provider will refuse its refresh token to this client; set admin.clientId to %q, or run 'grpcauth login' without --from-flytectl\n",
				redact.Clip(issued, 128), redact.Clip(id, 128), redact.Clip(issued, 128))
		}
	}
}

func runLogout(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("logout", logoutSummary, stderr)
	var cf configFlags
	cf.register(fs)
	var cache cacheFlags
	cache.register(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this `duration` (when the client id must be asked of FlyteAdmin)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	loaded, err := cf.load(fs, env)
	if err != nil {
		sayErr(stderr, "logout", err)
		return exitFail
	}
	cfg := loaded.Config
	files, err := cache.open(stderr, env, cfg)
	if err != nil {
		sayErr(stderr, "logout", err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// The deployment is asked, through the client every command builds
	// (so that a proxy in front of it lets the metadata RPCs through), for
	// what the token's cache key holds (the token endpoint, the client id
	// when none is configured) and for where to revoke.
	c, err := grpcauth.New(cfg, grpcauth.WithTokenCache(files), grpcauth.WithLogger(warnLogger(stderr)))
	if err != nil {
		return tokenFailure(stderr, "logout", err, loaded)
	}
	defer c.Close()
	if c.Authenticator == nil {
		sayErr(stderr, "logout", errors.New("authType Passthrough keeps no login to remove"))
		return exitFail
	}
	id, err := loginClientID(ctx, cfg, c.ConfigStore)
	if err != nil {
		sayErr(stderr, "logout", fmt.Errorf("cannot tell which token to remove (set --client-id): %w", err))
		return exitFail
	}
	key, err := c.Authenticator.CacheKey(ctx)
	if err != nil {
		return tokenFailure(stderr, "logout", fmt.Errorf("cannot tell which token to remove: %w", askingAdmin(cfg, err)), loaded)
	}
	tok, err := files.Load(ctx, key)
	if err != nil {
		sayErr(stderr, "logout", err)
		return exitFail
	}
	if err := files.Delete(ctx, key); errors.Is(err, tokencache.ErrKeyringUnavailable) {
		// What this session kept is gone; say what may remain.
		fmt.Fprintf(stderr, "grpcauth logout: warning: %s\n", redact.Clip(err.Error(), 1024))
	} else if err != nil {
		sayErr(stderr, "logout", err)
		return exitFail
	}
	if tok == nil {
		fmt.Fprintf(stdout, "No cached token for %s (client %s) in %s.\n", cfg.Endpoint, id, files.Dir())
		return exitOK
	}
	fmt.Fprintf(stdout, "Logged out: removed the cached token for %s (client %s) from %s.\n", cfg.Endpoint, id, files.Path(key))
	fmt.Fprintln(stdout, revokeLogin(ctx, c, cfg, id, tok))
	return exitOK
}

// loginClientID is the configured client id, else the one the store advertises.
func loginClientID(ctx context.Context, cfg grpcauth.Config, store configstore.ClientConfigStore) (string, error) {
	if id := strings.TrimSpace(cfg.ClientID); id != "" {
		return id, nil
	}
	cc, err := store.GetClientConfig(ctx)
	if err != nil {
		return "", err
	}
	if cc.ClientID == "" {
		return "", fmt.Errorf("the deployment advertises %w", authenticator.ErrNoClientID)
	}
	return cc.ClientID, nil
}

// freshLogin is a TokenCache that is written but never read: login logs
// in afresh even when a token is cached, and replaces it.
type freshLogin struct{ authenticator.TokenCache }

func (freshLogin) Load(context.Context, string) (*oauth2.Token, error) { return nil, nil }

func (c freshLogin) Update(ctx context.Context, key string, fn func(*oauth2.Token) (*oauth2.Token, error)) error {
	return c.TokenCache.Update(ctx, key, func(*oauth2.Token) (*oauth2.Token, error) { return fn(nil) })
}

func validity(tok *oauth2.Token) string {
	if tok.Expiry.IsZero() {
		return ""
	}
	return fmt.Sprintf("; the access token is valid until %s", tok.Expiry.Local().Format(time.RFC1123))
}

func refreshNote(tok *oauth2.Token) string {
	if tok.RefreshToken == "" {
		return ", and there is no refresh token: log in again when it expires"
	}
	return ", with a refresh token for the next ones"
}
