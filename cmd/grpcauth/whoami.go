package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flyteauth/grpcauth/internal/redact"
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

Exit status: 0 shown; 1 no token could be got; 2 bad command line; 3 a
login is needed: run 'grpcauth login'.`

func runWhoami(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("whoami", whoamiSummary, stderr)
	var cf configFlags
	cf.register(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this `duration`")
	var cache cacheFlags
	cache.register(fs)
	login := fs.Bool("login", false, "run the browser or device login here when no usable one is kept")
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
	key, tok, err := obtain(ctx, loaded.Config, tokenRequest{cache: cache, login: *login}, stderr, env)
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
	if err := tw.Flush(); err != nil {
		sayErr(stderr, "whoami", err)
		return exitFail
	}
	return exitOK
}

// describeToken returns the rows whoami shows for token, read at now:
// what a JWT claims, or that the token is opaque. Every value the token
// chose is made printable and clipped.
func describeToken(token string, now time.Time) [][2]string {
	claims := jwt.MapClaims{}
	if strings.Count(token, ".") != 2 {
		return [][2]string{{"token", "opaque (not a JWT): only its issuer can say whom it names"}}
	}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
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
	for _, k := range []string{"client_id", "cid", "azp"} {
		if v, ok := claims[k]; ok {
			add("client", v)
			break
		}
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
