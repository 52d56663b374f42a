package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/nologin"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/userinfopb"
)

const whoamiSummary = `Usage: grpcauth whoami [flags]

Shows whom the token of the configured flow names, as 'grpcauth token'
gets it (the kept login, client credentials or a command; it never opens a
login of its own unless --login is given): the issuer, subject, audience,
scopes, client and expiry a JWT carries, decoded WITHOUT verifying its
signature (only the server can verify it; this shows what the token
claims, which is what a server that refuses it read). An opaque token (not
a JWT) is said to be opaque: only its issuer can say whom it names. Times
are checked against this machine's clock, and a token issued in the future
or already expired is pointed out.

Then, unless --local is given, it asks the deployment who the token names,
with one call of the IdentityService's UserInfo carrying the token: Flyte
2's (flyteidl2.auth.IdentityService), else FlyteAdmin's
(flyteidl.service.IdentityService, served when its auth is on). What the
server says is shown under "server"; a deployment that serves neither is
said to have none.

Exit status: 0 shown; 1 no token could be got, or the server could not be
asked or refused to say; 2 bad command line; 3 a login is needed: run
'grpcauth login'.`

func runWhoami(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("whoami", whoamiSummary, stderr)
	var cf configFlags
	cf.register(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this `duration`")
	var cache cacheFlags
	cache.register(fs)
	login := fs.Bool("login", false, "run the browser or device login here when no usable one is kept")
	local := fs.Bool("local", false, "only decode the token: do not ask the server who it names")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "grpcauth whoami: --timeout must be positive")
		return exitUsage
	}
	loaded, err := cf.load(fs, env)
	if err != nil {
		sayErr(stderr, "whoami", err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req := tokenRequest{cache: cache, login: *login}
	var server serverAnswer
	if !*local {
		req.then = func(ctx context.Context, c *grpcauth.Client) { server = askUserInfo(ctx, c) }
	}
	key, tok, err := obtain(ctx, loaded.Config, req, stderr, env)
	if err != nil {
		return tokenFailure(stderr, "whoami", err, loaded)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("endpoint", redact.URL(loaded.Config.Endpoint))
	row("flow", describeFlow(loaded.Config))
	row("header", key)
	for _, r := range describeToken(tok.AccessToken, time.Now()) {
		row(r[0], r[1])
	}
	if !*local {
		for _, r := range server.rows(tok.AccessToken) {
			row(r[0], r[1])
		}
	}
	if err := tw.Flush(); err != nil {
		sayErr(stderr, "whoami", err)
		return exitFail
	}
	if te := (*authenticator.TokenError)(nil); errors.Is(server.err, nologin.ErrNeeded) && errors.As(server.err, &te) {
		// The server refused the kept token and the identity provider the
		// kept login: only a new login would do.
		return tokenFailure(stderr, "whoami", server.err, loaded)
	}
	if server.err != nil {
		fmt.Fprintf(stderr, "grpcauth whoami: %s\n", server.failure(tok.AccessToken))
		return exitFail
	}
	return exitOK
}

// unverifiedClaims are the claims of token if it is a JWT, read WITHOUT
// verifying its signature: what it claims, for a person to read.
func unverifiedClaims(token string) (jwt.MapClaims, bool) {
	claims := jwt.MapClaims{}
	if strings.Count(token, ".") != 2 {
		return nil, false
	}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return nil, false
	}
	return claims, true
}

// claimedClient is the client a JWT's claims name: client_id, or Okta's
// cid, or OpenID Connect's azp.
func claimedClient(claims jwt.MapClaims) (any, bool) {
	for _, k := range []string{"client_id", "cid", "azp"} {
		if v, ok := claims[k]; ok {
			return v, true
		}
	}
	return nil, false
}

// Method paths of UserInfo on each generation, and what to call them.
var userInfoServices = []struct{ name, method string }{
	{"Flyte 2's flyteidl2.auth.IdentityService", "/flyteidl2.auth.IdentityService/UserInfo"},
	{"FlyteAdmin's flyteidl.service.IdentityService", "/flyteidl.service.IdentityService/UserInfo"},
}

// serverAnswer is what asking the deployment's UserInfo came to.
type serverAnswer struct {
	service string // the one that answered, or was asked last
	info    *userinfopb.UserInfoResponse
	err     error // the call's error; nil with info nil: neither is served
}

// askUserInfo asks the deployment's UserInfo who c's token names, on the
// generation c found first (Flyte 2's when it has not looked). A refusal
// of the token is retried once with a new one, as on every call.
func askUserInfo(ctx context.Context, c *grpcauth.Client) serverAnswer {
	order := userInfoServices
	if configstore.ServiceOf(c.ConfigStore) == configstore.ServiceFlyte1 {
		order = []struct{ name, method string }{order[1], order[0]}
	}
	var a serverAnswer
	for _, s := range order {
		out := new(userinfopb.UserInfoResponse)
		err := c.Conn.Invoke(ctx, s.method, &userinfopb.UserInfoRequest{}, out)
		if status.Code(err) == codes.Unimplemented {
			continue
		}
		a.service = s.name
		if err != nil {
			a.err = err
			return a
		}
		a.info = out
		return a
	}
	return a
}

// rows are whoami's lines for the answer: every value the server chose
// made fit for the terminal.
func (a serverAnswer) rows(token string) [][2]string {
	switch {
	case a.err != nil:
		return [][2]string{{"server", "could not say, see below"}}
	case a.info == nil:
		return [][2]string{{"server", "serves no IdentityService (FlyteAdmin serves one only with its auth on): nothing to ask"}}
	}
	rows := [][2]string{{"server", redact.Clip(a.service, 128) + " says, of the token it took"}}
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, [2]string{k, scrub(v, 256, token)})
		}
	}
	i := a.info
	add("  subject", i.GetSubject())
	add("  name", i.GetName())
	add("  username", i.GetPreferredUsername())
	add("  email", i.GetEmail())
	add("  picture", i.GetPicture())
	if n := len(i.GetAdditionalClaims().GetFields()); n > 0 {
		add("  claims", fmt.Sprintf("%d, as decoded above", n))
	}
	if len(rows) == 1 {
		rows[0][1] = redact.Clip(a.service, 128) + " answered, but named nobody (every field empty)"
	}
	return rows
}

// failure says why the server could not say who the token names, and
// what to do.
func (a serverAnswer) failure(token string) string {
	st := status.Convert(a.err)
	msg := fmt.Sprintf("%s: %s: %s", a.service, st.Code(), scrub(st.Message(), 512, token))
	switch {
	case st.Code() == codes.Unauthenticated && a.service == userInfoServices[0].name:
		return msg + ": Flyte 2 names the caller from the claims of a JWT access token or from the identity headers its proxy forwards (trustForwardedIdentityHeaders); an opaque token, or a deployment that does not trust those headers, names nobody to it, and an ingress that refused the token says so too"
	case st.Code() == codes.Unauthenticated || st.Code() == codes.PermissionDenied:
		return msg + ": the server refused the token, a new one too: " + cmp.Or(refusalHint(st.Message()),
			"compare the token's audience and scopes above with what the deployment expects (grpcauth doctor)")
	}
	return msg + ": the server could not be asked (grpcauth doctor checks the way to it); --local shows the token alone"
}

// describeToken returns the rows whoami shows for token, read at now:
// what a JWT claims, or that the token is opaque. Every value the token
// chose is made printable and clipped.
func describeToken(token string, now time.Time) [][2]string {
	if strings.Count(token, ".") != 2 {
		return [][2]string{{"token", "opaque (not a JWT): only its issuer can say whom it names"}}
	}
	claims, ok := unverifiedClaims(token)
	if !ok {
		return [][2]string{{"token", "opaque (three dot-separated parts, but not a JWT that can be read)"}}
	}
	text := func(v any) string { return redact.Clip(fmt.Sprint(v), 256) }
	list := func(v any) string {
		switch v := v.(type) {
		case string:
			return redact.Clip(v, 512)
		case []any:
			parts := make([]string, 0, len(v))
			for _, p := range v {
				parts = append(parts, fmt.Sprint(p))
			}
			return redact.Clip(strings.Join(parts, " "), 512)
		case nil:
			return "-"
		}
		return text(v)
	}
	rows := [][2]string{{"token", "a JWT, decoded WITHOUT verifying its signature: what it claims, not proof"}}
	add := func(k string, v any) {
		if v != nil {
			rows = append(rows, [2]string{k, text(v)})
		}
	}
	add("issuer", claims["iss"])
	add("subject", claims["sub"])
	rows = append(rows, [2]string{"audience", list(claims["aud"])})
	scopes := claims["scope"]
	if scopes == nil {
		scopes = claims["scp"] // Okta's and Azure's name
	}
	rows = append(rows, [2]string{"scopes", list(scopes)})
	if v, ok := claimedClient(claims); ok {
		add("client", v)
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		note := "in " + exp.Sub(now).Round(time.Second).String()
		if !exp.After(now) {
			note = "EXPIRED " + now.Sub(exp.Time).Round(time.Second).String() + " ago by this machine's clock"
		}
		rows = append(rows, [2]string{"expires", exp.UTC().Format(time.RFC3339) + " (" + note + ")"})
	}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		v := iat.UTC().Format(time.RFC3339)
		if skew := iat.Sub(now); skew > 30*time.Second {
			v += " (" + skew.Round(time.Second).String() + " in the future by this machine's clock: check the clock)"
		}
		rows = append(rows, [2]string{"issued", v})
	}
	return rows
}
