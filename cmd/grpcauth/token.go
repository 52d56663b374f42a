package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/flyteconfig"
	"github.com/flyteauth/grpcauth/internal/nologin"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/loginui"
)

const tokenSummary = `Usage: grpcauth token [flags]

Prints an access token for the Flyte deployment the configuration names,
from the flow its authType selects: client credentials (ClientSecret), an
external command (ExternalCommand), or the login kept by 'grpcauth login'
(Pkce, DeviceFlow, and the default), whose refresh token it redeems when
the access token has expired. It never opens a login of its own, since
the program that runs it has nobody to show one to: without a usable
login it says to run 'grpcauth login' and exits with status 3 (--login
logs in here instead). The
configuration comes from the Flyte config file (--config, else the first
found as 'grpcauth config' says), overridden by an API key
($FLYTE_API_KEY) and the FLYTE_* environment variables, overridden by
these flags. What it does not name
(the token endpoint, unless --token-url is given) is asked of the
deployment's AuthMetadataService, Flyte 2's or Flyte 1's.

For client credentials, the client secret is read from $FLYTE_CREDENTIALS_CLIENT_SECRET, else from
the variable named by --client-secret-env (admin.clientSecretEnvVar), else
from the file named by --client-secret-file (admin.clientSecretLocation).
It is never printed.

Tokens are kept in the token cache (--token-cache-dir) for their
lifetime, client credentials' included, so that many runs make one token
request; --no-cache asks for a new one. A command's tokens are not kept.

With --proxy, it prints the proxy token instead: the output of
admin.proxyCommand, which is sent as "proxy-authorization: Bearer <token>"
to an identity-aware proxy in front of FlyteAdmin.

With --output json it prints one line of JSON, version 1 of a format that
only grows: {"version":1, "access_token":..., "token_type":"Bearer",
"expiry":"2026-01-02T15:04:05Z" (absent when unknown), "header":
"authorization" (the metadata key to send "<token_type> <access_token>"
in)}. The default output, the bare token, is what Flyte's
authType: ExternalCommand reads: grpcauth token can be the command of
flytekit, flyte-sdk and flytectl.

Exit status: 0 the token was printed; 1 it could not be got (the error is
on stderr); 2 bad command line; 3 a login is needed: run 'grpcauth login'.`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("token", tokenSummary, stderr)
	var cf configFlags
	cf.register(fs)
	header := fs.Bool("header", false, "print \"key: Bearer <token>\", the gRPC metadata to send, instead of the bare token (--output header)")
	output := fs.String("output", "token", "what to print: `token` (the bare access token), header (\"key: Bearer <token>\") or json (the token, its type, its expiry and the header key; see below)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this `duration`")
	proxy := fs.Bool("proxy", false, "print the proxy token of admin.proxyCommand instead of the access token")
	var cache cacheFlags
	cache.register(fs)
	noCache := fs.Bool("no-cache", false, "request a new token even when the token cache holds a valid one (for a browser or device login, with --login: log in)")
	login := fs.Bool("login", false, "run the browser or device login here when no usable one is kept, as 'grpcauth login' would")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "grpcauth token: --timeout must be positive")
		return exitUsage
	}
	if *header {
		*output = "header"
	}
	if *output != "token" && *output != "header" && *output != "json" {
		fmt.Fprintf(stderr, "grpcauth token: --output %q: want token, header or json\n", redact.Clip(*output, 64))
		return exitUsage
	}
	loaded, err := cf.load(fs, env)
	if err != nil {
		sayErr(stderr, "token", err)
		return exitFail
	}
	cfg := loaded.Config
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var key string
	var tok *oauth2.Token
	if *proxy {
		key, tok, err = fetchProxyToken(ctx, cfg)
	} else {
		key, tok, err = obtain(ctx, cfg, tokenRequest{cache: cache, noCache: *noCache, login: *login}, stderr, env)
	}
	if err != nil {
		return tokenFailure(stderr, "token", err, loaded)
	}
	switch *output {
	case "header":
		fmt.Fprintf(stdout, "%s: %s %s\n", key, tok.Type(), tok.AccessToken)
	case "json":
		if err := writeTokenJSON(stdout, key, tok); err != nil {
			sayErr(stderr, "token", err)
			return exitFail
		}
	default:
		fmt.Fprintln(stdout, tok.AccessToken)
	}
	return exitOK
}

// tokenRequest is how a command asks for the flow's token.
type tokenRequest struct {
	cache   cacheFlags
	noCache bool // read no kept token (write the new one)
	login   bool // a login may run here
	// then, when set, runs on the client that got the token, before it
	// is closed: a call on its connection carries that token.
	then func(ctx context.Context, c *grpcauth.Client)
}

// obtain gets the token of cfg's flow as tokenRequest says, and the
// metadata key to send it with.
func obtain(ctx context.Context, cfg grpcauth.Config, r tokenRequest, stderr io.Writer, env environment) (string, *oauth2.Token, error) {
	files, err := r.cache.open(stderr, env, cfg)
	if err != nil {
		return "", nil, err
	}
	var kept authenticator.TokenCache = files
	if r.noCache {
		kept = freshLogin{files} // written, never read
	}
	if !r.login {
		ctx = nologin.Context(ctx)
	}
	return fetchToken(ctx, cfg, r.then, grpcauth.WithTokenCache(kept),
		grpcauth.WithPrompter(&loginui.Terminal{Out: stderr, Browser: env.browser, Paste: env.stdin}))
}

// tokenFailure says on stderr why cmd got no token, with what to do, and
// returns the exit status: exitLogin when only a login would do.
func tokenFailure(stderr io.Writer, cmd string, err error, loaded *flyteconfig.Loaded) int {
	if errors.Is(err, nologin.ErrNeeded) {
		fmt.Fprintf(stderr, "grpcauth %s: %s needs a login (%s): %s\n",
			cmd, redact.URL(loaded.Config.Endpoint), loginNeededWhy(err), strings.Join(tokenAdvice(cmd, err, loaded), "; "))
		return exitLogin
	}
	sayErr(stderr, cmd, err)
	for _, a := range tokenAdvice(cmd, err, loaded) {
		fmt.Fprintln(stderr, a)
	}
	return exitFail
}

// loginNeededWhy says why a kept login cannot serve.
func loginNeededWhy(err error) string {
	var te *authenticator.TokenError
	if errors.As(err, &te) {
		return "its identity provider refused the kept login: " + forTerminal(te, 1024)
	}
	return "no login is kept for it"
}

// tokenAdvice is what to do about err, the failure of cmd to get a token.
func tokenAdvice(cmd string, err error, loaded *flyteconfig.Loaded) []string {
	if errors.Is(err, nologin.ErrNeeded) {
		return []string{fmt.Sprintf("run 'grpcauth login' with the same configuration, or 'grpcauth %s --login'", cmd)}
	}
	var out []string
	if hint := tlsHint(err, loaded.Config); hint != "" {
		out = append(out, "hint: "+hint)
	}
	if ae := (*adminError)(nil); errors.As(err, &ae) {
		out = append(out, "hint: 'grpcauth doctor' checks each hop to the deployment and names the first that fails")
	}
	if errors.Is(err, fs.ErrNotExist) && loaded.Source("clientSecretLocation") == "default" && loaded.Config.ClientSecretLocation != "" {
		out = append(out, fmt.Sprintf("hint: no client secret was set, and the default file %s is not there: set admin.clientSecretLocation (--client-secret-file), admin.clientSecretEnvVar or FLYTE_CREDENTIALS_CLIENT_SECRET", loaded.Config.ClientSecretLocation))
	}
	var te *authenticator.TokenError
	if errors.As(err, &te) && te.ErrorCode != "" {
		out = append(out, "OAuth error: "+redact.Clip(te.ErrorCode, 64))
		if te.ErrorCode == "invalid_client" {
			out = append(out, fmt.Sprintf("hint: check the client id %q and the client secret, read from %s", loaded.Config.ClientID, loaded.SecretSource()))
		}
	}
	return out
}

// tokenJSON is what --output json prints: version 1 of a format that only
// grows (new fields may be added; none is renamed or removed).
type tokenJSON struct {
	// Version is 1.
	Version int `json:"version"`
	// AccessToken is the access token.
	AccessToken string `json:"access_token"`
	// TokenType is "Bearer".
	TokenType string `json:"token_type"`
	// Expiry is when the token expires, in RFC 3339 (UTC); absent when
	// unknown (a command's opaque token, a server that gave no lifetime).
	Expiry string `json:"expiry,omitempty"`
	// Header is the gRPC metadata key (HTTP header) that carries
	// "<token_type> <access_token>": authorization, or the key the
	// deployment names (authorizationHeader), or proxy-authorization.
	Header string `json:"header"`
}

// writeTokenJSON prints tok as --output json describes.
func writeTokenJSON(w io.Writer, key string, tok *oauth2.Token) error {
	out := tokenJSON{Version: 1, AccessToken: tok.AccessToken, TokenType: tok.Type(), Header: key}
	if !tok.Expiry.IsZero() {
		out.Expiry = tok.Expiry.UTC().Format(time.RFC3339)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// fetchToken requests a token as cfg describes and returns it and the
// metadata key to send it with. It builds the client
// New builds, so that the config store's RPCs and the token request pass a
// proxyCommand proxy like every other call; the store's RPCs are anonymous.
// then, when not nil, runs on that client once it holds the token.
func fetchToken(ctx context.Context, cfg grpcauth.Config, then func(context.Context, *grpcauth.Client), opts ...grpcauth.Option) (key string, tok *oauth2.Token, err error) {
	c, err := grpcauth.New(cfg, append([]grpcauth.Option{tokenTimeout(ctx)}, opts...)...)
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	if c.Authenticator == nil {
		return "", nil, errors.New("authType Passthrough sends the headers each caller sets: there is no token of grpcauth's to print")
	}
	if err := c.Authenticator.RefreshCredentials(ctx); err != nil {
		return "", nil, askingAdmin(cfg, err)
	}
	if key, tok, err = keyAndToken(ctx, c.Authenticator); err == nil && then != nil {
		then(ctx, c)
	}
	return key, tok, err
}

// adminError is a failure to ask FlyteAdmin, worded for the terminal.
type adminError struct {
	text string
	err  error
}

func (e *adminError) Error() string { return e.text }
func (e *adminError) Unwrap() error { return e.err }

// askingAdmin words err for the terminal when it is a failure to ask
// FlyteAdmin at cfg's endpoint (a gRPC status, not a token endpoint's
// answer): which deployment, how it was dialled, and the status of the
// RPC itself, without the chain of packages it passed through. Any other
// error is returned as it is.
func askingAdmin(cfg grpcauth.Config, err error) error {
	var te *authenticator.TokenError
	var rpc interface{ GRPCStatus() *status.Status }
	if errors.As(err, &te) || !errors.As(err, &rpc) {
		return err
	}
	st := rpc.GRPCStatus()
	return &adminError{err: err, text: fmt.Sprintf("could not ask FlyteAdmin at %s (%s) for its auth settings: %s: %s",
		redact.URL(cfg.Endpoint), describeTransport(cfg), st.Code(), strings.TrimPrefix(st.Message(), "grpcauth: "))}
}

// keyAndToken returns k's header key and current token.
func keyAndToken(ctx context.Context, k *authenticator.Keeper) (string, *oauth2.Token, error) {
	key, _, err := k.Credential(ctx)
	if err != nil {
		return "", nil, err
	}
	tok, err := k.Token(ctx)
	return key, tok, err
}

// describeTransport says how cfg secures the connection to FlyteAdmin, for
// error messages: plaintext, or TLS with which roots.
func describeTransport(cfg grpcauth.Config) string {
	switch {
	case cfg.Insecure:
		return "plaintext, insecure"
	case cfg.InsecureSkipVerify:
		return "TLS without certificate verification"
	case cfg.CACertFilePath != "":
		return "TLS, trusting the system's roots and the CA file " + cfg.CACertFilePath
	}
	return "TLS, trusting the system's roots only (no caCertFilePath)"
}

// tlsHint suggests a fix for an error that looks like a certificate
// problem, or returns "".
func tlsHint(err error, cfg grpcauth.Config) string {
	msg := err.Error()
	switch {
	case !strings.Contains(msg, "x509:") && !strings.Contains(msg, "tls:"):
		return ""
	case cfg.CACertFilePath != "":
		return "the server's certificate is not trusted: check that " + cfg.CACertFilePath + " (--ca-cert, admin.caCertFilePath) holds the CA that signed it, and that the endpoint's host name is one the certificate names"
	}
	return "the server's certificate is not trusted: name its CA with --ca-cert (admin.caCertFilePath), or check that the endpoint's host name is one the certificate names"
}

// fetchProxyToken runs cfg's proxyCommand, through the client every
// command builds, and returns its token and the metadata key to send it
// with.
func fetchProxyToken(ctx context.Context, cfg grpcauth.Config) (key string, tok *oauth2.Token, err error) {
	if len(cfg.ProxyCommand) == 0 {
		return "", nil, errors.New("no proxyCommand: set admin.proxyCommand or FLYTE_CREDENTIALS_PROXY_COMMAND")
	}
	// The proxy token needs nothing of the flow: a placeholder one keeps
	// an incomplete flow configuration from failing the command.
	cfg.AuthType, cfg.Command = grpcauth.AuthTypeExternalCommand, []string{"true"}
	c, err := grpcauth.New(cfg, tokenTimeout(ctx))
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	return keyAndToken(ctx, c.Proxy)
}

// tokenTimeout bounds each token request by what is left of ctx, so that
// a command that hangs is killed within --timeout and says so.
func tokenTimeout(ctx context.Context) grpcauth.Option {
	d := 30 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		d = time.Until(deadline)
	}
	return grpcauth.WithTokenTimeout(d)
}
