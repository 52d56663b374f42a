package reliability_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// fault is one row of the fault matrix.
type fault struct {
	group, name string
	cfg         rigConfig
	// timeout is the deadline of each call made while the fault is on;
	// 0 means callTimeout.
	timeout time.Duration
	inject  func(t *testing.T, r *rig)
	clear   func(t *testing.T, r *rig)
	// code is the status code of the calls made during the fault;
	// codes.OK (the zero value) means codes.Unauthenticated.
	code codes.Code
	// succeeds marks an answer that is odd but usable: calls succeed, and
	// no refresh storm follows.
	succeeds bool
	// cached marks a fault of AuthMetadataService: once the config store
	// holds an answer it no longer matters, so warm calls succeed.
	cached bool
	// msg are fragments the error message must contain; notMsg, fragments
	// it must not (response bodies).
	msg, notMsg []string
	// anyOf, when set, are fragments of which the message must contain at
	// least one: for faults whose symptom depends on a race. coldMsg are
	// fragments the message must contain when no token was held before,
	// where there is no race.
	anyOf, coldMsg []string
	// requests, when set, is how many token requests an odd but usable
	// answer may cost (a device login whose refresh token was revoked:
	// the refused refresh, then the login); default 1.
	requests int64
	// passed marks the service's own answer, passed on as it came: no
	// refresh failed, so there is no *interceptor.RefreshError.
	passed bool
	// cause checks what errors.As and errors.Is reach.
	cause func(t *testing.T, err error)
	// check runs at the end of the row.
	check func(t *testing.T, r *rig)
	// note is shown in the matrix.
	note string
}

// tokenFault injects a fault on the token server; clear removes it.
func tokenFault(f func(r *rig) testserver.Fault) (inject, clear func(*testing.T, *rig)) {
	return func(_ *testing.T, r *rig) { r.tokens.SetFault(f(r)) },
		func(_ *testing.T, r *rig) { r.tokens.SetFault(nil) }
}

func static(f testserver.Fault) func(*rig) testserver.Fault {
	return func(*rig) testserver.Fault { return f }
}

// metadataError makes both AuthMetadataService RPCs fail with err.
func metadataError(err error) (inject, clear func(*testing.T, *rig)) {
	return func(_ *testing.T, r *rig) { r.admin.SetMetadataError(err) },
		func(_ *testing.T, r *rig) { r.admin.SetMetadataError(nil) }
}

// tokenEndpoint makes AuthMetadataService advertise endpoint.
func tokenEndpoint(endpoint string) (inject, clear func(*testing.T, *rig)) {
	return func(_ *testing.T, r *rig) {
			r.admin.SetOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: endpoint})
		}, func(_ *testing.T, r *rig) {
			r.admin.SetOAuth2Metadata(r.goodMetadata())
		}
}

// row builds a fault from an inject/clear pair.
func row(group, name string, ic func() (func(*testing.T, *rig), func(*testing.T, *rig)), f fault) fault {
	f.group, f.name = group, name
	f.inject, f.clear = ic()
	return f
}

func tokenError(check func(t *testing.T, te *authenticator.TokenError)) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var te *authenticator.TokenError
		require.ErrorAs(t, err, &te, "errors.As reaches the *authenticator.TokenError")
		if check != nil {
			check(t, te)
		}
	}
}

func httpStatus(code int, oauth string) func(*testing.T, error) {
	return tokenError(func(t *testing.T, te *authenticator.TokenError) {
		require.Equal(t, code, te.StatusCode)
		require.Equal(t, oauth, te.ErrorCode)
	})
}

func metadataCode(code codes.Code) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		// A call that had a token was rejected, and its refresh failed; a
		// call that had none was not sent.
		cause := errors.Unwrap(err)
		var re *interceptor.RefreshError
		if errors.As(err, &re) {
			cause = re.Err
		}
		require.Equal(t, code, status.Code(cause), "the config store's error keeps AuthMetadataService's code")
	}
}

const (
	groupToken  = "token endpoint"
	groupMeta   = "AuthMetadataService"
	groupDevice = "device login"
	groupCache  = "token cache"
	groupProxy  = "proxyCommand"
	htmlBody    = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
)

// faults returns the matrix. It is a function so that each subtest gets
// fresh closures for the state some rows keep.
// transientRetries is the authenticator's: a token request that failed
// transiently is sent again this many times.
const transientRetries = 2

func faults() []fault {
	var (
		wrongSecret = newSwitchSecret(secret)
		other       *recordingServer
	)
	huge := `{"pad":"` + strings.Repeat("x", 3<<19) + `","access_token":"never-read","token_type":"Bearer"}`
	return []fault{
		row(groupToken, "HTTP 500, text body", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultStatus(500, "text/plain; charset=utf-8", "upstream exploded")))
		}, fault{msg: []string{"HTTP 500", "not an OAuth2 error"}, notMsg: []string{"exploded"}, cause: httpStatus(500, "")}),
		row(groupToken, "HTTP 502, HTML body", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultStatus(502, "text/html", htmlBody)))
		}, fault{msg: []string{"HTTP 502", `Content-Type "text/html"`}, notMsg: []string{"Bad Gateway", "nginx"}, cause: httpStatus(502, "")}),
		row(groupToken, "HTTP 400 invalid_client", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultOAuthError(400, "invalid_client", "client authentication failed")))
		}, fault{msg: []string{"HTTP 400", "invalid_client", "client authentication failed"}, cause: httpStatus(400, "invalid_client")}),
		row(groupToken, "HTTP 400 invalid_scope", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultOAuthError(400, "invalid_scope", "scope all is not allowed")))
		}, fault{msg: []string{"HTTP 400", "invalid_scope", "scope all is not allowed"}, cause: httpStatus(400, "invalid_scope")}),
		row(groupToken, "HTTP 400 unauthorized_client", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultOAuthError(400, "unauthorized_client", "client may not use this grant")))
		}, fault{msg: []string{"HTTP 400", "unauthorized_client"}, cause: httpStatus(400, "unauthorized_client")}),
		row(groupToken, "HTTP 401 with a JSON body", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultOAuthError(401, "invalid_client", "bad credentials")))
		}, fault{msg: []string{"HTTP 401", "invalid_client", "bad credentials"}, cause: httpStatus(401, "invalid_client")}),
		row(groupToken, "HTTP 401 without a body", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultStatus(401, "", "")))
		}, fault{msg: []string{"HTTP 401", "not an OAuth2 error", "0 bytes"}, cause: httpStatus(401, "")}),
		{
			group: groupToken, name: "wrong client secret (real 401 from the server)",
			cfg:    rigConfig{secretSource: wrongSecret},
			inject: func(*testing.T, *rig) { wrongSecret.set(secret + "-rotated-away") },
			clear:  func(*testing.T, *rig) { wrongSecret.set(secret) },
			msg:    []string{"HTTP 401", "invalid_client", "wrong secret"},
			cause:  httpStatus(401, "invalid_client"),
			note:   "cleared by fixing the secret source, read at every request",
		},
		row(groupToken, "200 with a garbage body", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultGarbage()))
		}, fault{msg: []string{"cannot parse json"}, notMsg: []string{"this is not JSON"}, cause: tokenError(nil)}),
		row(groupToken, "200 with an empty body", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultBody(200, "")))
		}, fault{msg: []string{"cannot parse json"}, cause: tokenError(nil)}),
		row(groupToken, "200 without access_token", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultBody(200, `{"token_type":"Bearer","expires_in":3600}`)))
		}, fault{msg: []string{"missing access_token"}, cause: tokenError(nil)}),
		row(groupToken, "200 with a negative expires_in", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(func(r *rig) testserver.Fault {
				return r.mintingFault(`{"access_token":"%s","token_type":"Bearer","expires_in":-3600}`)
			})
		}, fault{succeeds: true, note: "token used until rejected"}),
		row(groupToken, "200 with expires_in 0", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(func(r *rig) testserver.Fault {
				return r.mintingFault(`{"access_token":"%s","token_type":"Bearer","expires_in":0}`)
			})
		}, fault{succeeds: true, note: "token used until rejected"}),
		row(groupToken, "200 with a huge expires_in (2^63-1)", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(func(r *rig) testserver.Fault {
				return r.mintingFault(`{"access_token":"%s","token_type":"Bearer","expires_in":9223372036854775807}`)
			})
		}, fault{succeeds: true, note: "over 10 years counts as no expiry: used until rejected"}),
		row(groupToken, "200 with expires_in beyond int64 (1e30)", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(func(r *rig) testserver.Fault {
				return r.mintingFault(`{"access_token":"%s","token_type":"Bearer","expires_in":1e30}`)
			})
		}, fault{msg: []string{"cannot parse json", "1e30"}, cause: tokenError(nil),
			note: "golang.org/x/oauth2 accepts only integer expires_in"}),
		row(groupToken, "200 with a body over 1 MiB", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultBody(200, huge)))
		}, fault{msg: []string{"cannot parse json"}, notMsg: []string{"xxxxxxxx"}, cause: tokenError(nil),
			note: "the body is read up to 1 MiB, so the JSON is cut short"}),
		row(groupToken, "200 with a control character in access_token", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(func(r *rig) testserver.Fault {
				return r.mintingFault(`{"access_token":"%s\n","token_type":"Bearer"}`)
			})
		}, fault{msg: []string{"access_token", "a gRPC header cannot carry"}, cause: tokenError(nil),
			note: "refused at refresh: gRPC would fail every call with Internal and never refresh"}),
		row(groupToken, "no answer until the token timeout", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultHang()))
		}, fault{
			cfg: rigConfig{authOpts: []authenticator.Option{authenticator.WithTokenTimeout(time.Second)}},
			msg: []string{"no answer within the token timeout of 1s"},
			cause: tokenError(func(t *testing.T, te *authenticator.TokenError) {
				require.ErrorIs(t, te, context.DeadlineExceeded)
			}),
			note: "WithTokenTimeout(1s)",
		}),
		{
			group: groupToken, name: "no answer; the call's deadline ends first",
			cfg:     rigConfig{authOpts: []authenticator.Option{authenticator.WithTokenTimeout(4 * time.Second)}},
			timeout: 1500 * time.Millisecond,
			inject:  func(_ *testing.T, r *rig) { r.tokens.SetFault(testserver.FaultHang()) },
			clear: func(t *testing.T, r *rig) {
				r.tokens.SetFault(nil)
				// The request in flight still hangs; callers that join it
				// fail until it times out. Wait for that, then recover.
				failures := r.auth.Stats().Failures
				waitUntil(t, 4*time.Second+hangGrace, func() bool { return r.auth.Stats().Failures > failures })
				// Cold, with no token held, the Keeper reports that failure
				// to the next call within its retry pause (1 s) rather than
				// asking again at once; that call may fail.
				_ = r.callWithin(t, unary, callTimeout)
			},
			// The caller's own deadline ended the call, not the
			// credentials: its code is the context's.
			code: codes.DeadlineExceeded,
			msg:  []string{"waiting for a token", "context deadline exceeded"},
			cause: func(t *testing.T, err error) {
				require.ErrorIs(t, err, context.DeadlineExceeded)
			},
			note: "call deadline 1.5s, WithTokenTimeout(4s); calls joining the hung request fail until it times out. " +
				"The caller's own deadline ended the call, so its code is the context's: cold, the Keeper was fetching the first token and nothing was sent; " +
				"with a token held, the rejected call was waiting for its refresh (errors.As reaches the `*interceptor.RefreshError`). " +
				"Cold, the first call after the hung request failed reports that failure (the Keeper's 1 s retry pause)",
		},
		row(groupToken, "connection closed without an answer", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultCloseConn()))
		}, fault{msg: []string{"connection closed before an answer came"}, cause: tokenError(func(t *testing.T, te *authenticator.TokenError) {
			require.NotErrorIs(t, te, io.EOF, "a stream caller would take the failure for a clean end of stream")
		})}),
		row(groupToken, "connection reset mid-body", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenFault(static(testserver.FaultResetMidBody()))
		}, fault{msg: []string{"unexpected EOF"}, notMsg: []string{"trunc"}, cause: tokenError(nil)}),
		{
			group: groupToken, name: "IdP down (connection refused)",
			cfg:    rigConfig{idpFront: true},
			inject: func(_ *testing.T, r *rig) { r.idp.stop() },
			clear:  func(t *testing.T, r *rig) { r.idp.restart(t) },
			// Warm, a request may go out on the kept-alive connection the
			// IdP just closed.
			anyOf:   []string{"dial tcp 127.0.0.1", "connection closed before an answer came"},
			coldMsg: []string{"dial tcp 127.0.0.1", "connection refused"},
			cause:   tokenError(nil),
			check: func(t *testing.T, r *rig) {
				require.Positive(t, r.idp.requests.Load(), "token requests went to the IdP's address")
			},
			note: "the token endpoint's address refuses connections, then serves again",
		},
		{
			group: groupToken, name: "TLS certificate from an unknown CA",
			cfg:    rigConfig{tokenFront: true},
			inject: func(_ *testing.T, r *rig) { r.front.serve(false) },
			clear:  func(_ *testing.T, r *rig) { r.front.serve(true) },
			// Warm, a request may go out on the kept-alive connection the
			// front just closed.
			anyOf:   []string{"certificate signed by unknown authority", "connection closed before an answer came"},
			coldMsg: []string{"certificate signed by unknown authority"},
			cause:   tokenError(nil),
			check: func(t *testing.T, r *rig) {
				require.Positive(t, r.front.requests.Load(), "token requests went through the HTTPS front")
			},
			note: "the IdP serves a certificate from another CA, then the right one",
		},
		{
			group: groupToken, name: "HTTP proxy down",
			cfg:    rigConfig{proxy: true},
			inject: func(_ *testing.T, r *rig) { r.proxy.stop() },
			clear:  func(t *testing.T, r *rig) { r.proxy.restart(t) },
			// Cold, the proxy refuses the connection. Warm, a request may go
			// out on the kept-alive connection the proxy just closed.
			anyOf:   []string{"proxyconnect tcp: dial tcp 127.0.0.1", "connection closed before an answer came"},
			coldMsg: []string{"proxyconnect tcp: dial tcp 127.0.0.1", "connection refused"},
			cause:   tokenError(nil),
			check: func(t *testing.T, r *rig) {
				require.Positive(t, r.proxy.requests.Load(), "token requests went through the proxy")
			},
			note: "the token requests' HTTP proxy (Flyte's `httpProxyURL`) is a loopback port nobody listens on, then a proxy there",
		},
		{
			group: groupToken, name: "307 redirect to another host",
			inject: func(t *testing.T, r *rig) {
				other = newRecordingServer(t)
				target := strings.Replace(other.srv.URL, "127.0.0.1", "localhost", 1) + testserver.TokenPath
				r.tokens.SetFault(redirectFault(http.StatusTemporaryRedirect, target))
			},
			clear: func(_ *testing.T, r *rig) { r.tokens.SetFault(nil) },
			msg:   []string{"HTTP 307"},
			cause: httpStatus(307, ""),
			check: func(t *testing.T, _ *rig) {
				require.Empty(t, other.seen(), "the other host got a request (Authorization headers shown)")
			},
			note: "the redirect is not followed: the other host sees no request, so no credentials",
		},

		row(groupMeta, "Unavailable", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return metadataError(status.Error(codes.Unavailable, "admin is restarting"))
		}, fault{cached: true, msg: []string{"configstore: Get", "Unavailable", "admin is restarting"}, cause: metadataCode(codes.Unavailable)}),
		row(groupMeta, "Unimplemented", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return metadataError(status.Error(codes.Unimplemented, "unknown service flyteidl.service.AuthMetadataService"))
		}, fault{cached: true, msg: []string{"configstore: Get", "Unimplemented", "unknown service"}, cause: metadataCode(codes.Unimplemented)}),
		{
			group: groupMeta, name: "DeadlineExceeded (no answer within the fetch timeout)",
			cfg:    rigConfig{storeOpts: []configstore.Option{configstore.WithTimeout(time.Second)}},
			inject: func(_ *testing.T, r *rig) { r.admin.SetMetadataLatency(time.Minute) },
			clear:  func(_ *testing.T, r *rig) { r.admin.SetMetadataLatency(0) },
			cached: true,
			msg:    []string{"configstore: Get", "DeadlineExceeded"},
			cause:  metadataCode(codes.DeadlineExceeded),
			note:   "configstore.WithTimeout(1s)",
		},
		row(groupMeta, "Unauthenticated (no recursion into the interceptor)", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return metadataError(status.Error(codes.Unauthenticated, "anonymous access disabled"))
		}, fault{cached: true, msg: []string{"configstore: Get", "anonymous access disabled"}, cause: metadataCode(codes.Unauthenticated),
			note: "the interceptors skip AuthMetadataService, so this is not retried"}),
		row(groupMeta, "empty token endpoint", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenEndpoint("")
		}, fault{cached: true, msg: []string{"token_endpoint is empty"}, cause: invalidMetadata}),
		row(groupMeta, "malformed token endpoint URL (not a URL)", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenEndpoint("http://[::1")
		}, fault{cached: true, msg: []string{"token_endpoint", "not an absolute http(s) URL"}, cause: invalidMetadata}),
		row(groupMeta, "malformed token endpoint URL (relative)", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenEndpoint("/oauth2/token")
		}, fault{cached: true, msg: []string{"token_endpoint", "not an absolute http(s) URL"}, cause: invalidMetadata}),
		row(groupMeta, "malformed token endpoint URL (ftp scheme)", func() (func(*testing.T, *rig), func(*testing.T, *rig)) {
			return tokenEndpoint("ftp://idp.example/token")
		}, fault{cached: true, msg: []string{"token_endpoint", "not an absolute http(s) URL"}, cause: invalidMetadata}),
		{
			group: groupDevice, name: "device authorization endpoint never answers",
			cfg:    rigConfig{device: true},
			inject: func(_ *testing.T, r *rig) { r.device.SetDeviceFault(testserver.FaultHang()) },
			clear: func(t *testing.T, r *rig) {
				r.device.SetDeviceFault(nil)
				require.NoError(t, r.auth.RefreshCredentials(t.Context()), "an explicit login")
			},
			msg:   []string{"device"},
			cause: func(t *testing.T, err error) { require.ErrorIs(t, err, context.DeadlineExceeded) },
			check: func(t *testing.T, r *rig) {
				require.Positive(t, r.device.Authorizations(), "the login after the fault went through")
			},
			note: "each login ends at its timeout (2 s here); the next call after the 30 s login pause logs in again, an explicit login (`grpcauth login`, RefreshCredentials) at once",
		},
		{
			group: groupCache, name: "cache file is a FIFO (device login)",
			cfg:      rigConfig{cache: true, device: true},
			requests: 2,
			inject:   func(t *testing.T, r *rig) { require.NoError(t, mkfifo(r.cachePath)) },
			clear: func(t *testing.T, r *rig) {
				// Read, the FIFO is skipped with a warning; written, it is
				// replaced by a regular file (a rename over it).
				fi, err := os.Lstat(r.cachePath)
				require.NoError(t, err)
				if !fi.Mode().IsRegular() {
					require.Contains(t, r.logs.text(), "not a regular file", "the cache is skipped with a warning")
				}
				require.NoError(t, os.Remove(r.cachePath))
			},
			succeeds: true,
			note:     "never opened for reading, which would block; a save renames a regular file over it",
		},
		{
			group: groupProxy, name: "the proxy token expires",
			cfg:      rigConfig{plaintext: true, tcp: true, proxyCommand: true},
			inject:   func(_ *testing.T, r *rig) { r.px.Expire(proxyToken(1)) },
			clear:    func(*testing.T, *rig) {},
			succeeds: true,
			check: func(t *testing.T, r *rig) {
				// Cold, the two metadata RPCs go out together with the
				// expired token: both are refused, one run replaces it.
				require.Positive(t, r.px.Rejected(), "the proxy refused the expired token")
				require.EqualValues(t, 2, r.pxAuth.Stats().TokenRequests, "one more run of proxyCommand")
			},
			note: "the refused call is sent again with the next proxy token",
		},
		{
			group: groupProxy, name: "FlyteAdmin relays an upstream HTTP 401 through the proxy",
			cfg:    rigConfig{plaintext: true, tcp: true, proxyCommand: true},
			inject: func(_ *testing.T, r *rig) { r.admin.SetEchoError(relayed401) },
			clear:  func(_ *testing.T, r *rig) { r.admin.SetEchoError(nil) },
			passed: true,
			msg:    []string{status.Convert(relayed401).Message()},
			check: func(t *testing.T, r *rig) {
				require.Zero(t, r.px.Rejected(), "the proxy refused nothing")
				require.EqualValues(t, 1, r.pxAuth.Stats().TokenRequests, "proxyCommand ran once")
			},
			note: "the service's answer, passed on as it came: proxyCommand does not run again",
		},
	}
}

// relayed401 is what a service answers when it relays an upstream HTTP
// 401: the very text grpc-go gives a proxy's refusal.
var relayed401 = status.Error(codes.Unauthenticated, "unexpected HTTP status code received from server: 401 (Unauthorized)")

func invalidMetadata(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, configstore.ErrInvalidMetadata)
}

// outcome is what one phase of a row showed, for the matrix.
type outcome struct {
	ok       bool // the calls succeeded
	code     codes.Code
	cause    string
	message  string
	requests int64 // token requests the two calls made
	// afterPause: calls succeeded again only after a pause; refused: the
	// token endpoint refused the request for good (a 4xx), so the pause
	// was the refusal pause rather than the retry pause.
	afterPause, refused bool
}

func TestFaultMatrix(t *testing.T) {
	type result struct {
		f          fault
		cold, warm outcome
	}
	var results []result
	for i, f := range faults() {
		res := result{f: f}
		t.Run(f.group+"/"+f.name, func(t *testing.T) {
			t.Run("cold", func(t *testing.T) { res.cold = runFault(t, faults()[i], false) })
			t.Run("warm", func(t *testing.T) { res.warm = runFault(t, faults()[i], true) })
		})
		results = append(results, res)
	}
	if *matrixOut == "" || t.Failed() {
		return
	}
	var b strings.Builder
	b.WriteString("| where | fault | code | cause (errors.As / errors.Is) | message (tail) | token requests | with a token held | recovery |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		warm := fmt.Sprintf("`%s`", r.warm.code)
		if r.warm.ok {
			warm = "succeeds"
			if r.f.cached {
				warm += " (config cached)"
			}
		}
		code, cause, msg := fmt.Sprintf("`%s`", r.cold.code), r.cold.cause, "`"+r.cold.message+"`"
		if r.cold.ok {
			code, cause, msg = "OK", "—", "call succeeds"
		}
		recovery := "next call succeeds"
		switch {
		case (r.cold.afterPause || r.warm.afterPause) && (r.cold.refused || r.warm.refused):
			recovery = "calls succeed after the refusal pause (1 s, doubling while refusals repeat; RefreshCredentials asks at once)"
		case r.cold.afterPause || r.warm.afterPause:
			recovery = "calls succeed after the retry pause (1 s from the failed request; RefreshCredentials asks at once)"
		}
		if r.f.note != "" {
			recovery += "; " + r.f.note
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %s | %s |\n",
			r.f.group, r.f.name, code, cause, cellText(msg), r.cold.requests, warm, cellText(recovery))
	}
	require.NoError(t, os.WriteFile(*matrixOut, []byte(b.String()), 0o644))
}

// runFault runs one row from a fresh rig: cold (no token yet) or warm (a
// token held, then revoked when the fault starts).
func runFault(t *testing.T, f fault, warm bool) outcome {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first, so it runs after the rig is closed
	r := newRig(t, f.cfg)
	if warm {
		require.NoError(t, r.callWithin(t, unary, callTimeout), "priming call")
	}
	f.inject(t, r)
	if warm {
		r.revokeAll()
	}

	before := r.auth.Stats().TokenRequests
	wantOK := f.succeeds || (warm && f.cached)
	timeout := cmp.Or(f.timeout, callTimeout)
	var (
		out   = outcome{ok: wantOK}
		texts []string
	)
	for i, s := range []shape{unary, bidi} {
		err := r.callWithin(t, s, timeout)
		if wantOK {
			require.NoError(t, err, "%s call", s.name)
			continue
		}
		requireFailure(t, f, s, err, warm)
		texts = append(texts, err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err))
		if i == 0 {
			var te *authenticator.TokenError
			out.refused = errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 && te.StatusCode != http.StatusTooManyRequests
			out.code = status.Code(err)
			out.cause = describeCause(err)
			out.message = excerpt(err)
		}
	}
	out.requests = r.auth.Stats().TokenRequests - before
	if wantOK {
		for range 10 {
			require.NoError(t, r.callWithin(t, unary, callTimeout))
		}
		require.LessOrEqual(t, r.auth.Stats().TokenRequests-before, int64(cmp.Or(f.requests, 1)),
			"one token request, then the token is reused: no refresh storm")
	} else {
		// A transient failure is sent again twice within the call.
		require.LessOrEqual(t, out.requests, int64(2*(1+transientRetries)), "at most one token request (and its transient retries) per failed call")
	}

	f.clear(t, r)
	// After a refusal for good (a 4xx), no token request is sent for a
	// second, so the calls of that second still fail.
	if err := r.callWithin(t, unary, callTimeout); err != nil {
		out.afterPause = true
		waitUntil(t, 10*time.Second, func() bool { return r.callWithin(t, unary, callTimeout) == nil })
	}
	for _, s := range allShapes {
		require.NoError(t, r.callWithin(t, s, callTimeout), "%s call after the fault was cleared", s.name)
	}
	require.False(t, r.admin.MetadataRPCsSawToken(), "a token rode on an AuthMetadataService RPC")
	r.requireNoLeak(t, texts...)
	if f.check != nil {
		f.check(t, r)
	}
	return out
}

// requireFailure checks the error of a call made during a fault.
func requireFailure(t *testing.T, f fault, s shape, err error, warm bool) {
	t.Helper()
	require.Error(t, err, "%s call succeeded despite the fault", s.name)
	st, ok := status.FromError(err)
	require.True(t, ok, "%s call: not a status error: %T %v", s.name, err, err)
	require.Equal(t, cmp.Or(f.code, codes.Unauthenticated), st.Code(), "%s call: %v", s.name, err)
	var re *interceptor.RefreshError
	switch {
	case warm && !f.passed:
		// A rejected call whose refresh failed.
		require.ErrorAs(t, err, &re, "%s call: errors.As reaches the *interceptor.RefreshError", s.name)
	case !warm && f.code == codes.OK && !f.passed:
		// No token could be got: the call was not sent, and its error is
		// the token request's, not a server's rejection.
		require.False(t, errors.As(err, &re), "%s call: a call without a token went out: %v", s.name, err)
		require.Contains(t, st.Message(), "the call was not sent", s.name)
	}
	msg := f.msg
	if !warm {
		msg = append(slices.Clone(msg), f.coldMsg...)
	}
	for _, m := range msg {
		require.Contains(t, st.Message(), m, "%s call: the message names the cause", s.name)
	}
	if len(f.anyOf) > 0 {
		require.True(t, slices.ContainsFunc(f.anyOf, func(m string) bool { return strings.Contains(st.Message(), m) }),
			"%s call: the message names the cause: %s", s.name, st.Message())
	}
	for _, m := range f.notMsg {
		require.NotContains(t, st.Message(), m, "%s call: the message repeats the response body", s.name)
	}
	if f.cause != nil {
		f.cause(t, err)
	}
}

// describeCause names what errors.As and errors.Is reach in err.
func describeCause(err error) string {
	var te *authenticator.TokenError
	if errors.As(err, &te) {
		parts := []string{"`*authenticator.TokenError`"}
		if te.StatusCode != 0 {
			parts = append(parts, fmt.Sprintf("StatusCode %d", te.StatusCode))
		}
		if te.ErrorCode != "" {
			parts = append(parts, fmt.Sprintf("ErrorCode `%s`", te.ErrorCode))
		}
		if errors.Is(err, context.DeadlineExceeded) {
			parts = append(parts, "`context.DeadlineExceeded`")
		}
		return strings.Join(parts, ", ")
	}
	if errors.Is(err, configstore.ErrInvalidMetadata) {
		return "`configstore.ErrInvalidMetadata`"
	}
	var re *interceptor.RefreshError
	if errors.As(err, &re) {
		if st, ok := status.FromError(re.Err); ok {
			return fmt.Sprintf("status `%s` from AuthMetadataService", st.Code())
		}
		if errors.Is(re.Err, context.DeadlineExceeded) {
			return "`context.DeadlineExceeded` (the call's own)"
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "`context.DeadlineExceeded` (the call's own)"
	}
	return fmt.Sprintf("`%T`", err)
}

var (
	portRE   = regexp.MustCompile(`(127\.0\.0\.1|localhost|\[::1\]):\d+`)
	prefixRE = regexp.MustCompile(`^authenticator: (token request to \S+ failed|resolving client config): `)
	// answeredRE is the interceptor's note of what the server answered,
	// the same in every row.
	answeredRE = regexp.MustCompile(` \(the server had answered [^()]*(\([^()]*\))?[^()]*\)$`)
)

// excerpt returns the part of err's message after the interceptor's and
// the authenticator's prefixes, with loopback ports replaced so the matrix
// is stable.
func excerpt(err error) string {
	msg := status.Convert(err).Message()
	for _, lead := range []string{"refreshing credentials failed: ", "the call was not sent: "} {
		if _, after, ok := strings.Cut(msg, lead); ok {
			msg = after
			break
		}
	}
	msg = prefixRE.ReplaceAllString(msg, "… ")
	msg = answeredRE.ReplaceAllString(msg, "")
	return portRE.ReplaceAllString(msg, "$1:PORT")
}

func cellText(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, d, 5*time.Millisecond)
}
