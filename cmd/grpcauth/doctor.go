package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/flyteconfig"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/netconf"
	"github.com/flyteauth/grpcauth/internal/nologin"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

const doctorSummary = `Usage: grpcauth doctor [flags]

Checks, hop by hop, what a call to the configured Flyte deployment goes
through, and stops at the first hop that fails, naming it and the fix:

  config        the config file is found and parsed, and names an endpoint
  reachable     the endpoint's host accepts a TCP connection
  proxy         admin.proxyCommand, when there is one, prints a token
  metadata      FlyteAdmin answers over TLS (or plaintext, with insecure)
                and serves an AuthMetadataService (Flyte 2's or Flyte 1's)
  token url     the token endpoint is https (or http on loopback) and answers
  clock         this machine's clock agrees with the token endpoint's Date
  credentials   the flow gets a token (never a new login: run grpcauth login)
  claims        a JWT's audience and scopes are the ones it was asked for
  call          one authenticated call to --method is accepted (skipped
                without --method)

Exit status: 0 every hop passed; 1 a hop failed; 2 bad command line; 3 a
login is needed.`

// maxSkew is the clock difference doctor calls a failure: tokens are
// judged against the servers' clocks.
const maxSkew = time.Minute

// hop is one step of doctor: its name and its check.
type hop struct {
	name  string
	check func(ctx context.Context) verdict
}

// verdict is what a hop found, or why it failed and the fix.
type verdict struct {
	found, fix string
	err        error
}

func pass(found string) verdict          { return verdict{found: found} }
func fail(err error, fix string) verdict { return verdict{err: err, fix: fix} }

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("doctor", doctorSummary, stderr)
	var cf configFlags
	cf.register(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "give up on each hop after this `duration`")
	method := fs.String("method", "", "a gRPC `method` of the deployment to call with the token, such as /flyteidl.service.AdminService/ListProjects (its request is sent empty)")
	var cache cacheFlags
	cache.register(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	var (
		loaded     *flyteconfig.Loaded
		client     *grpcauth.Client
		tokenURL   string
		skewProbe  *http.Response
		advertised *configstore.ClientConfig
		token      string
	)
	defer func() {
		if client != nil {
			_ = client.Close()
		}
	}()
	hops := []hop{
		{"config", func(context.Context) verdict {
			var err error
			if loaded, err = cf.load(fs, env); err != nil {
				return fail(err, "fix the file, or name another with --config")
			}
			if _, err := loaded.Config.Target(); err != nil {
				return fail(err, "set admin.endpoint (or FLYTE_PLATFORM_URL, --endpoint)")
			}
			file := loaded.File
			if file == "" {
				file = "no file (flags and environment)"
			}
			return pass(fmt.Sprintf("%s; authType %s", file, describeFlow(loaded.Config)))
		}},
		{"reachable", func(ctx context.Context) verdict {
			addr := hostPort(loaded.Config.Endpoint)
			if proxy := grpcProxy(env, addr); proxy != nil {
				// gRPC goes through the proxy: that is the hop to check.
				conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", proxy.Host)
				if err != nil {
					return fail(fmt.Errorf("the proxy %s, which gRPC goes to %s through (HTTPS_PROXY): %w", redact.URL(proxy.String()), addr, err),
						"check HTTPS_PROXY, or name the host in NO_PROXY to go to it directly")
				}
				_ = conn.Close()
				return pass(fmt.Sprintf("the proxy %s accepts connections; gRPC goes to %s through it (HTTPS_PROXY), and whether the proxy lets it through shows at the metadata hop", redact.URL(proxy.String()), addr))
			}
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return fail(err, "check the host and port of admin.endpoint, your network, VPN or proxy")
			}
			_ = conn.Close()
			return pass(addr + " accepts connections")
		}},
		{"proxy", func(ctx context.Context) verdict {
			if len(loaded.Config.ProxyCommand) == 0 {
				return pass("none (no proxyCommand)")
			}
			if _, _, err := fetchProxyToken(ctx, loaded.Config); err != nil {
				return fail(err, "run admin.proxyCommand by hand and fix what it says (it prints the token of the identity-aware proxy in front of FlyteAdmin)")
			}
			return pass("proxyCommand printed a token (whether the proxy takes it shows at the next hop)")
		}},
		{"metadata", func(ctx context.Context) verdict {
			c, err := grpcauth.New(loaded.Config, grpcauth.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				return fail(err, "fix the configuration the error names")
			}
			client = c
			store, err := configstore.NewRemote(c.Conn)
			if err != nil {
				return fail(err, "")
			}
			cc, err := store.GetClientConfig(ctx)
			if err != nil {
				return fail(err, metadataFix(err, loaded.Config))
			}
			tokenURL = cmp.Or(loaded.Config.TokenURL, cc.TokenEndpoint)
			advertised = cc
			generation := "Flyte 1 (flyteidl.service.AuthMetadataService)"
			if configstore.ServiceOf(store) == configstore.ServiceFlyte2 {
				generation = "Flyte 2 (flyteidl2.auth.AuthMetadataService)"
			}
			return pass(fmt.Sprintf("%s over %s", generation, describeTransport(loaded.Config)))
		}},
		{"token url", func(ctx context.Context) verdict {
			if tokenURL == "" {
				return fail(errors.New("no token endpoint: the config names none and the deployment advertises none"), "set admin.tokenUrl")
			}
			u, err := url.Parse(tokenURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
				return fail(fmt.Errorf("token endpoint %q is not an http(s) URL", redact.URL(tokenURL)), "set admin.tokenUrl to the identity provider's token endpoint")
			}
			if u.Scheme == "http" && !transportsec.LoopbackHost(u.Hostname()) && !loaded.Config.Insecure {
				return fail(fmt.Errorf("token endpoint %s is plain http to a host that is not loopback: the client secret or refresh token would travel in clear", redact.URL(tokenURL)),
					"use the identity provider's https endpoint (admin.tokenUrl), or insecure: true for a development cluster")
			}
			resp, err := probeHTTP(ctx, tokenURL, loaded.Config)
			if err != nil {
				var ue *url.Error // it names the whole URL, query included
				if errors.As(err, &ue) {
					err = ue.Err
				}
				return fail(fmt.Errorf("%s does not answer: %w", redact.URL(tokenURL), err),
					"check that the identity provider is reachable from here (proxy: admin.httpProxyURL or HTTPS_PROXY)")
			}
			skewProbe = resp
			if resp.StatusCode >= 300 && resp.StatusCode < 400 {
				to := "elsewhere"
				if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Host != "" {
					to = "to " + loc.Scheme + "://" + loc.Host
				}
				return fail(fmt.Errorf("%s redirects %s (HTTP %d): token requests follow no redirect", redact.URL(tokenURL), redact.Clip(to, 256), resp.StatusCode),
					"set admin.tokenUrl to the identity provider's token endpoint itself (https, the address it redirects to if that is its token endpoint)")
			}
			return pass(fmt.Sprintf("%s answers (HTTP %d)", redact.URL(tokenURL), resp.StatusCode))
		}},
		{"clock", func(context.Context) verdict {
			date, err := http.ParseTime(skewProbe.Header.Get("Date"))
			if err != nil {
				return pass("not checked: the token endpoint sent no Date header")
			}
			skew := time.Until(date).Round(time.Second)
			if skew > maxSkew || skew < -maxSkew {
				return fail(fmt.Errorf("this machine's clock is %s off the token endpoint's (its Date: %s)", abs(skew), date.UTC().Format(time.RFC3339)),
					"set the clock right (NTP): tokens would look expired, or not yet valid, to the servers")
			}
			return pass(fmt.Sprintf("within %s of the token endpoint's", abs(skew)))
		}},
		{"credentials", func(ctx context.Context) verdict {
			_, tok, err := obtain(nologin.Context(ctx), loaded.Config, tokenRequest{cache: cache}, io.Discard, env)
			if errors.Is(err, nologin.ErrNeeded) {
				return fail(fmt.Errorf("%s: %w", loginNeededWhy(err), nologin.ErrNeeded), "run 'grpcauth login' with the same configuration")
			}
			if err != nil {
				fix := strings.Join(tokenAdvice("doctor", err, loaded), "; ")
				return fail(err, cmp.Or(fix, "check the flow's settings (grpcauth config)"))
			}
			token = tok.AccessToken
			kind := "opaque"
			if strings.Count(tok.AccessToken, ".") == 2 {
				kind = "a JWT (grpcauth whoami shows its claims)"
			}
			return pass("a token was got: " + kind)
		}},
		{"claims", func(context.Context) verdict {
			scopes := loaded.Config.Scopes
			if len(scopes) == 0 {
				scopes = advertised.Scopes
			}
			return checkClaims(token, cmp.Or(loaded.Config.Audience, advertised.Audience), scopes)
		}},
		{"call", func(ctx context.Context) verdict {
			if *method == "" {
				return pass("not checked: name a method with --method")
			}
			// The call's own client, on the token cache the credentials hop
			// read, so that it carries the same token.
			files, err := cache.open(io.Discard, env, loaded.Config)
			if err != nil {
				return fail(err, "check --token-cache-dir")
			}
			c, err := grpcauth.New(loaded.Config, grpcauth.WithTokenCache(files), grpcauth.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				return fail(err, "fix the configuration the error names")
			}
			defer c.Close()
			err = c.Conn.Invoke(nologin.Context(ctx), *method, &emptypb.Empty{}, &emptypb.Empty{})
			switch code := status.Code(err); {
			case code == codes.OK:
				return pass(*method + " accepted")
			case strings.Contains(status.Convert(err).Message(), "the call was not sent"):
				return fail(err, "no token for the call: see the credentials hop")
			case code == codes.Unauthenticated || code == codes.PermissionDenied:
				return fail(err, cmp.Or(refusalHint(status.Convert(err).Message()),
					"the server refused the token: compare its audience and scopes (grpcauth whoami) with what the deployment expects"))
			case code == codes.Unimplemented:
				return fail(err, "the server has no such method, so it judged no token: name one it serves with --method")
			case code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.Canceled || code == codes.Internal || code == codes.Unknown:
				return fail(err, "the call did not reach a judgement of the token: check the connection, then try again")
			}
			return pass(fmt.Sprintf("%s passed authentication (it answered %s)", *method, status.Code(err)))
		}},
	}
	fmt.Fprintln(stdout, "grpcauth doctor: each hop in order")
	for i, h := range hops {
		hctx, cancel := context.WithTimeout(ctx, *timeout)
		v := h.check(hctx)
		cancel()
		found, fix, err := v.found, v.fix, v.err
		if err != nil {
			fmt.Fprintf(stdout, "  FAIL  %-12s %s\n", h.name, forTerminal(err, 1024))
			if fix != "" {
				fmt.Fprintf(stdout, "        %-12s fix: %s\n", "", redact.Clip(fix, 1024))
			}
			for _, rest := range hops[i+1:] {
				fmt.Fprintf(stdout, "  -     %-12s not checked\n", rest.name)
			}
			if errors.Is(err, nologin.ErrNeeded) {
				return exitLogin
			}
			return exitFail
		}
		fmt.Fprintf(stdout, "  ok    %-12s %s\n", h.name, redact.Clip(found, 1024))
	}
	return exitOK
}

// missingScopeAll is FlyteAdmin's refusal of a client's token without the
// scope "all" (its auth.BlanketAuthorization).
const missingScopeAll = "authenticated user doesn't have required scope"

// refusalHint is the fix for a refusal whose message says what FlyteAdmin
// missed; "" for any other.
func refusalHint(message string) string {
	if strings.Contains(message, missingScopeAll) {
		return "FlyteAdmin takes a token only with the scope all: add all to admin.scopes (--scopes), and have the identity provider grant it"
	}
	return ""
}

// grpcProxy is the HTTP proxy gRPC connects to addr through, by the
// environment's HTTPS_PROXY and NO_PROXY (as grpc-go reads them: the rule
// of net/http, which never proxies a loopback host); nil when none.
func grpcProxy(env environment, addr string) *url.URL {
	get := func(names ...string) string {
		for _, n := range names {
			if v, ok := env.lookup(n); ok && v != "" {
				return v
			}
		}
		return ""
	}
	cfg := httpproxy.Config{HTTPSProxy: get("HTTPS_PROXY", "https_proxy"), NoProxy: get("NO_PROXY", "no_proxy")}
	u, err := cfg.ProxyFunc()(&url.URL{Scheme: "https", Host: addr})
	if err != nil || u == nil {
		return nil
	}
	if u.Port() == "" {
		// grpc-go resolves the proxy's address with its own resolver,
		// whose default port is 443 whatever the scheme.
		u.Host = net.JoinHostPort(u.Hostname(), "443")
	}
	return u
}

// checkClaims compares what a JWT claims with the audience and scopes the
// token was asked for; an opaque token is not checked.
func checkClaims(token, audience string, scopes []string) verdict {
	if strings.Count(token, ".") != 2 {
		return pass("not checked: the token is opaque")
	}
	claims, ok := unverifiedClaims(token)
	if !ok {
		return pass("not checked: the token is not a JWT that can be read")
	}
	if aud, err := claims.GetAudience(); audience != "" && err == nil && !slices.Contains(aud, audience) {
		return fail(fmt.Errorf("the token's audience (%s) does not name %s, which it was asked for", redact.Clip(strings.Join(aud, " "), 512), redact.Clip(audience, 256)),
			"the identity provider ignored the audience: set admin.audienceParam to resource (RFC 8707) or both, or allow the audience for the client at the provider")
	}
	granted := claims["scope"]
	if granted == nil {
		granted = claims["scp"]
	}
	var have []string
	switch g := granted.(type) {
	case string:
		have = strings.Fields(g)
	case []any:
		for _, v := range g {
			have = append(have, fmt.Sprint(v))
		}
	}
	var missing []string
	for _, want := range scopes {
		if granted != nil && !slices.Contains(have, want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return fail(fmt.Errorf("the token lacks scopes it was asked for: %s (granted: %s)", redact.Clip(strings.Join(missing, " "), 512), redact.Clip(strings.Join(have, " "), 512)),
			"allow those scopes for the client at the identity provider, or ask for the ones it grants (admin.scopes)")
	}
	return pass("its audience and scopes are the ones asked for")
}

// metadataFix is the fix for a failed AuthMetadataService request.
func metadataFix(err error, cfg grpcauth.Config) string {
	if hint := tlsHint(err, cfg); hint != "" {
		return hint
	}
	msg := err.Error()
	var pe *interceptor.ProxyCredentialError
	switch {
	case errors.As(err, &pe):
		return "the proxy token could not be got: run admin.proxyCommand by hand and fix what it says"
	case interceptor.IsProxyRejection(err):
		return "the identity-aware proxy in front of FlyteAdmin refused the proxy token: check admin.proxyCommand (its audience, its account)"
	case strings.Contains(msg, "looked like an HTTP/1.1 header"):
		return "the endpoint speaks HTTP/1.1, not gRPC: name FlyteAdmin's gRPC port in admin.endpoint (not its HTTP one), or let a proxy in front pass HTTP/2"
	case strings.Contains(msg, "ALPN"):
		return "the server, or a proxy in front of it, does not speak HTTP/2 (ALPN h2): gRPC needs it end to end"
	case status.Code(errors.Unwrap(err)) == codes.Unimplemented || strings.Contains(msg, "serves neither"):
		return "the endpoint is not FlyteAdmin (or Flyte 2's API): check admin.endpoint"
	case strings.Contains(msg, "first record does not look like a TLS handshake"), strings.Contains(msg, "http2: frame too large"):
		return "TLS and plaintext disagree: set insecure: true for a plaintext endpoint, or remove it for a TLS one"
	}
	return "check admin.endpoint, insecure and caCertFilePath"
}

// probeHTTP sends a GET to u with cfg's TLS trust and proxy, following no
// redirect, and returns the answer (its body closed).
func probeHTTP(ctx context.Context, u string, cfg grpcauth.Config) (*http.Response, error) {
	tr, err := netconf.Settings{CAFile: cfg.CACertFilePath, SkipVerify: cfg.InsecureSkipVerify, ProxyURL: cfg.HTTPProxyURL}.Transport()
	if err != nil {
		return nil, err
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: netconf.NoRedirects}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp, nil
}

// hostPort is the address of an endpoint: dns:/// dropped, port 443 when
// none is given.
func hostPort(endpoint string) string {
	e := strings.TrimPrefix(strings.TrimSpace(endpoint), "dns:///")
	if _, _, err := net.SplitHostPort(e); err != nil {
		return net.JoinHostPort(strings.Trim(e, "[]"), "443")
	}
	return e
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
