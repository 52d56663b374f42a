package httpauth_test

// These tests drive the credential-carrying round tripper the way an
// attacker (a server that redirects elsewhere, a plaintext hop) or an
// unlucky user (refusals, bodies that cannot be read twice, a credential
// that cannot be got, many goroutines) would, with real httptest servers.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/httpauth"
	"github.com/flyteauth/grpcauth/internal/notyet"
)

// ---------------------------------------------------------------------------
// Fakes and helpers
// ---------------------------------------------------------------------------

// fakeCreds is a hand-written Credentials (and authenticator.Authenticator):
// it issues "Bearer tok-N", moves to N+1 when the current value is
// rejected, and counts every call.
type fakeCreds struct {
	key string // header key it names, such as "authorization"

	mu        sync.Mutex
	n         int      // current token number; 0 until the first Credential
	credErr   error    // Credential fails with it when set
	credErrAt int      // if > 0, only the credErrAt-th Credential call fails
	rejErr    error    // Rejected fails with it when set
	creds     int      // Credential calls
	rejected  []string // values passed to Rejected
	accepted  []string // values passed to Accepted
}

func newCreds(key string) *fakeCreds { return &fakeCreds{key: key} }

func (f *fakeCreds) Credential(ctx context.Context) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creds++
	if f.credErr != nil && (f.credErrAt == 0 || f.credErrAt == f.creds) {
		return "", "", f.credErr
	}
	if f.n == 0 {
		f.n = 1
	}
	return f.key, fmt.Sprintf("Bearer tok-%d", f.n), nil
}

func (f *fakeCreds) Rejected(_ context.Context, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejected = append(f.rejected, value)
	if f.rejErr != nil {
		return f.rejErr
	}
	if value == fmt.Sprintf("Bearer tok-%d", f.n) || f.n == 0 {
		f.n++
	}
	return nil
}

func (f *fakeCreds) Accepted(value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accepted = append(f.accepted, value)
}

func (f *fakeCreds) snapshot() (creds int, rejected, accepted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creds, append([]string(nil), f.rejected...), append([]string(nil), f.accepted...)
}

// hit is what a server saw of one request.
type hit struct {
	Host, Method, Path string
	Auth, ProxyAuth    string
	Body               string
}

// server is an httptest server that records every request it gets.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

// newServer starts a server (TLS when useTLS) that records each request and
// then lets h answer it; n is the request's 1-based number on this server.
func newServer(t *testing.T, useTLS bool, h func(w http.ResponseWriter, r *http.Request, n int, body string)) *server {
	t.Helper()
	s := &server{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.hits = append(s.hits, hit{
			Host: r.Host, Method: r.Method, Path: r.URL.Path,
			Auth: r.Header.Get("Authorization"), ProxyAuth: r.Header.Get("Proxy-Authorization"),
			Body: string(b),
		})
		n := len(s.hits)
		s.mu.Unlock()
		h(w, r, n, string(b))
	})
	if useTLS {
		s.Server = httptest.NewTLSServer(handler)
	} else {
		s.Server = httptest.NewServer(handler)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) Hits() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.hits...)
}

func ok(w http.ResponseWriter, _ *http.Request, _ int, body string) {
	_, _ = io.WriteString(w, "ok:"+body)
}

// baseFor is a base transport that trusts the httptest TLS certificate,
// which every httptest TLS server shares. Its idle connections are closed
// at the end of the test.
func baseFor(t *testing.T, s *server) *http.Transport {
	t.Helper()
	tr := s.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// mode is one way the round tripper is used: the Keeper's bearer token, or
// the proxy token.
type mode struct {
	name   string
	key    string // the fake's header key
	header string // the wire header that carries the credential
	refuse func(w http.ResponseWriter)
	build  func(base http.RoundTripper, c *fakeCreds) http.RoundTripper
}

func bearerTransport(base http.RoundTripper, c httpauth.Credentials) *httpauth.Transport {
	return &httpauth.Transport{
		Base:    base,
		Creds:   c,
		Header:  "Authorization",
		Refused: func(r *http.Response) bool { return r.StatusCode == http.StatusUnauthorized },
		What:    "token",
	}
}

var modes = []mode{
	{
		name: "bearer", key: "authorization", header: "Authorization",
		refuse: func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		},
		build: func(base http.RoundTripper, c *fakeCreds) http.RoundTripper { return bearerTransport(base, c) },
	},
	{
		name: "proxy407", key: "proxy-authorization", header: "Proxy-Authorization",
		refuse: func(w http.ResponseWriter) {
			w.Header().Set("Proxy-Authenticate", "Bearer")
			w.WriteHeader(http.StatusProxyAuthRequired)
		},
		build: func(base http.RoundTripper, c *fakeCreds) http.RoundTripper {
			return interceptor.ProxyTransport(c, base)
		},
	},
	{
		name: "proxy401", key: "proxy-authorization", header: "Proxy-Authorization",
		refuse: func(w http.ResponseWriter) {
			w.Header().Set("Proxy-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
		},
		build: func(base http.RoundTripper, c *fakeCreds) http.RoundTripper {
			return interceptor.ProxyTransport(c, base)
		},
	},
}

// credOf returns what h carried in m's header.
func (m mode) credOf(h hit) string {
	if m.header == "Proxy-Authorization" {
		return h.ProxyAuth
	}
	return h.Auth
}

// noCredential asserts that no hit carried any credential header.
func noCredential(t *testing.T, hits []hit, msg string) {
	t.Helper()
	for i, h := range hits {
		assert.Empty(t, h.Auth, "%s: hit %d (%s%s) carried Authorization", msg, i, h.Host, h.Path)
		assert.Empty(t, h.ProxyAuth, "%s: hit %d (%s%s) carried Proxy-Authorization", msg, i, h.Host, h.Path)
	}
}

// noSecret asserts that err's text names no token or secret.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	for _, s := range append([]string{"tok-", "Bearer "}, secrets...) {
		assert.NotContains(t, err.Error(), s, "error text leaks %q", s)
	}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// recorder is a base RoundTripper that dials nothing: it records each
// request it is given and answers 200.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, Request: req,
	}, nil
}

func (r *recorder) Reqs() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...)
}

// trackedBody is a request body that records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// router is a base transport that serves made-up host names from two
// httptest servers, by scheme: https:// from tlsSrv, http:// from plain.
// The Host header keeps the made-up name, so the servers see where the
// request was meant to go. Like http.Transport, it answers with
// Response.Request set to the request it was given.
type router struct {
	tlsSrv, plain *server
	rt            http.RoundTripper
}

func newRouter(t *testing.T, tlsSrv, plain *server) *router {
	return &router{tlsSrv: tlsSrv, plain: plain, rt: baseFor(t, tlsSrv)}
}

func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	srv := r.plain
	if req.URL.Scheme == "https" {
		srv = r.tlsSrv
	}
	out.URL.Host = srv.Listener.Addr().String()
	out.Host = req.URL.Host
	resp, err := r.rt.RoundTrip(out)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

// countingFlow is an authenticator.Flow that hands out "tok-N", counting.
// (A type of its own rather than a function adapter, which the package may
// or may not export.)
type countingFlow struct{ n *atomic.Int32 }

func (f countingFlow) Token(context.Context, *configstore.ClientConfig, *oauth2.Token) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", f.n.Add(1))}, nil
}

// newKeeper returns a Keeper whose flow hands out "tok-N", counting.
func newKeeper(t *testing.T, flows *atomic.Int32, opts ...authenticator.Option) *authenticator.Keeper {
	t.Helper()
	k, err := authenticator.New("dns:///admin.example:443", configstore.NewStatic(configstore.ClientConfig{}), countingFlow{flows}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// ---------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------

// A redirect from the API host to another host: the other host never sees
// the credential, whatever the redirect status and method.
func TestRedirectToAnotherHostDropsTheCredential(t *testing.T) {
	for _, m := range modes {
		for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(fmt.Sprintf("%s/%d", m.name, code), func(t *testing.T) {
				other := newServer(t, true, ok)
				api := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, _ string) {
					http.Redirect(w, r, other.URL+"/landing", code)
				})
				c := newCreds(m.key)
				client := &http.Client{Transport: m.build(baseFor(t, api), c)}

				req, err := http.NewRequest(http.MethodPost, api.URL+"/start", strings.NewReader("payload"))
				require.NoError(t, err)
				resp, err := client.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)

				apiHits := api.Hits()
				require.Len(t, apiHits, 1)
				assert.Equal(t, "Bearer tok-1", m.credOf(apiHits[0]), "the API host gets the credential")
				otherHits := other.Hits()
				require.Len(t, otherHits, 1)
				noCredential(t, otherHits, "other host")
				assert.Empty(t, req.Header.Get(m.header), "the caller's request is not modified")
			})
		}
	}
}

// A redirect on the same host and scheme keeps the credential.
func TestRedirectOnTheSameHostKeepsTheCredential(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			api := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, body string) {
				if r.URL.Path == "/start" {
					http.Redirect(w, r, "/next", http.StatusTemporaryRedirect)
					return
				}
				ok(w, r, 0, body)
			})
			c := newCreds(m.key)
			client := &http.Client{Transport: m.build(baseFor(t, api), c)}
			req, err := http.NewRequest(http.MethodPut, api.URL+"/start", strings.NewReader("same-host"))
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, "ok:same-host", string(b))
			hits := api.Hits()
			require.Len(t, hits, 2)
			for _, h := range hits {
				assert.Equal(t, "Bearer tok-1", m.credOf(h), h.Path)
			}
			assert.Equal(t, "same-host", hits[1].Body, "307 replays the body")
			assert.Empty(t, req.Header.Get(m.header))
		})
	}
}

// Redirects to the same host name on another scheme, to a subdomain and to
// another port: none is the first request's origin, none gets the
// credential, even when plain http is allowed.
func TestRedirectToAnotherSchemeOrPortOrSubdomain(t *testing.T) {
	for _, m := range modes {
		for _, target := range []string{
			"http://api.test/landing",       // https → http, same host name
			"https://evil.api.test/landing", // subdomain (net/http would keep Authorization)
			"https://api.test:8443/landing", // another port
			"https://api.test.evil/landing", // suffix trick
		} {
			for _, allowHTTP := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/allowHTTP=%v", m.name, target, allowHTTP), func(t *testing.T) {
					plain := newServer(t, false, ok)
					tlsSrv := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, body string) {
						if r.URL.Path == "/start" && r.Host == "api.test" {
							http.Redirect(w, r, target, http.StatusFound)
							return
						}
						ok(w, r, 0, body)
					})
					c := newCreds(m.key)
					rt := m.build(newRouter(t, tlsSrv, plain), c)
					if allowHTTP {
						if m.name == "bearer" {
							rt.(*httpauth.Transport).AllowHTTP = true
						} else {
							rt = interceptor.ProxyTransport(c, newRouter(t, tlsSrv, plain), interceptor.WithInsecure())
						}
					}
					code, _ := get(t, &http.Client{Transport: rt}, "https://api.test/start")
					assert.Equal(t, http.StatusOK, code)

					var first []hit
					var rest []hit
					for _, h := range append(tlsSrv.Hits(), plain.Hits()...) {
						if h.Host == "api.test" && h.Path == "/start" {
							first = append(first, h)
						} else {
							rest = append(rest, h)
						}
					}
					require.Len(t, first, 1)
					assert.Equal(t, "Bearer tok-1", m.credOf(first[0]))
					require.Len(t, rest, 1, "the redirect was followed")
					noCredential(t, rest, "redirect hop to "+target)
				})
			}
		}
	}
}

// A → B → A and A → B → B. The rule: a hop whose scheme or host differs
// from the FIRST request's gets no credential; a hop back to the first
// request's origin may carry it (it is where the caller meant the
// credential to go). The A → B → B chain is the shape of CVE-2024-45336
// (net/http restored sensitive headers on a same-host hop after a
// cross-host one): B must get nothing on either hop.
func TestRedirectChains(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name+"/A-B-A", func(t *testing.T) {
			var apiURL string
			b := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, _ string) {
				http.Redirect(w, r, apiURL+"/back", http.StatusFound)
			})
			a := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, body string) {
				if r.URL.Path == "/start" {
					http.Redirect(w, r, b.URL+"/bounce", http.StatusFound)
					return
				}
				ok(w, r, 0, body)
			})
			apiURL = a.URL
			c := newCreds(m.key)
			code, _ := get(t, &http.Client{Transport: m.build(baseFor(t, a), c)}, a.URL+"/start")
			assert.Equal(t, http.StatusOK, code)

			noCredential(t, b.Hits(), "B")
			ah := a.Hits()
			require.Len(t, ah, 2)
			assert.Equal(t, "Bearer tok-1", m.credOf(ah[0]), "first hop")
			assert.Equal(t, "Bearer tok-1", m.credOf(ah[1]), "the hop back to the first request's origin may carry it")
		})
		t.Run(m.name+"/A-B-B", func(t *testing.T) {
			b := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, body string) {
				if r.URL.Path == "/bounce" {
					http.Redirect(w, r, "/again", http.StatusFound)
					return
				}
				ok(w, r, 0, body)
			})
			a := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, _ string) {
				http.Redirect(w, r, b.URL+"/bounce", http.StatusFound)
			})
			c := newCreds(m.key)
			code, _ := get(t, &http.Client{Transport: m.build(baseFor(t, a), c)}, a.URL+"/start")
			assert.Equal(t, http.StatusOK, code)
			bh := b.Hits()
			require.Len(t, bh, 2)
			noCredential(t, bh, "B")
		})
	}
}

// A host the API redirected to cannot make the client spend a token: its
// refusal is returned as it came, with no Rejected and no resend.
func TestRefusalFromARedirectTargetIsNotTheCredentialsBusiness(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			other := newServer(t, true, func(w http.ResponseWriter, _ *http.Request, _ int, _ string) { m.refuse(w) })
			api := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, _ string) {
				http.Redirect(w, r, other.URL+"/landing", http.StatusTemporaryRedirect)
			})
			c := newCreds(m.key)
			req, err := http.NewRequest(http.MethodPost, api.URL+"/start", strings.NewReader("b"))
			require.NoError(t, err)
			resp, err := (&http.Client{Transport: m.build(baseFor(t, api), c)}).Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.NotEqual(t, http.StatusOK, resp.StatusCode)
			assert.Len(t, api.Hits(), 1)
			require.Len(t, other.Hits(), 1, "no resend to the other host")
			noCredential(t, other.Hits(), "other host")
			creds, rejected, accepted := c.snapshot()
			assert.Equal(t, 1, creds, "no credential is got for the other host")
			assert.Empty(t, rejected)
			assert.Equal(t, []string{"Bearer tok-1"}, accepted, "the API host's redirect accepted the credential")
		})
	}
}

// stripRequest is a base transport that answers through rt but, like many
// wrappers that build a fresh *http.Response (caches, recorders, fakes,
// httptest.ResponseRecorder.Result), leaves Response.Request nil. Nothing
// in net/http requires a RoundTripper to set it, and http.Client does not
// fill it in.
type stripRequest struct{ rt http.RoundTripper }

func (s stripRequest) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if resp != nil {
		resp.Request = nil
	}
	return resp, err
}

// The redirect rule must not fail open when the base transport does not
// set Response.Request: a hop to another host still gets no credential.
func TestRedirectToAnotherHostWithABaseThatLeavesResponseRequestNil(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			other := newServer(t, true, ok)
			api := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, _ string) {
				http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
			})
			c := newCreds(m.key)
			client := &http.Client{Transport: m.build(stripRequest{baseFor(t, api)}, c)}
			resp, err := client.Get(api.URL + "/start")
			if err == nil {
				resp.Body.Close()
			}
			noCredential(t, other.Hits(), "other host (base without Response.Request)")
		})
	}
}

// ---------------------------------------------------------------------------
// Refusal and retry
// ---------------------------------------------------------------------------

// A refusal causes exactly one Rejected (of the value that went out) and
// one resend with a fresh credential, the body replayed byte for byte;
// Accepted hears only of the value the server accepted.
func TestRefusalRetriesOnceWithAFreshCredentialAndTheSameBody(t *testing.T) {
	payload := "line 1\nline 2\x00binary\xff\r\n" + strings.Repeat("x", 70<<10)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			api := newServer(t, true, func(w http.ResponseWriter, r *http.Request, n int, body string) {
				if n == 1 {
					m.refuse(w)
					_, _ = io.WriteString(w, "refused")
					return
				}
				ok(w, r, n, body)
			})
			c := newCreds(m.key)
			var retries []string
			rt := m.build(baseFor(t, api), c)
			if tr, isHTTPAuth := rt.(*httpauth.Transport); isHTTPAuth {
				tr.OnRetry = func(path string) { retries = append(retries, path) }
			}
			req, err := http.NewRequest(http.MethodPost, api.URL+"/v1/things?x=1", strings.NewReader(payload))
			require.NoError(t, err)
			require.NotNil(t, req.GetBody)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "ok:"+payload, string(b))

			hits := api.Hits()
			require.Len(t, hits, 2)
			assert.Equal(t, "Bearer tok-1", m.credOf(hits[0]))
			assert.Equal(t, "Bearer tok-2", m.credOf(hits[1]))
			assert.Equal(t, payload, hits[0].Body)
			assert.Equal(t, payload, hits[1].Body, "the body is replayed byte for byte")
			_, rejected, accepted := c.snapshot()
			assert.Equal(t, []string{"Bearer tok-1"}, rejected)
			assert.Equal(t, []string{"Bearer tok-2"}, accepted, "only the accepted value is reported")
			if m.name == "bearer" {
				assert.Equal(t, []string{"/v1/things"}, retries)
			}
			assert.Empty(t, req.Header.Get(m.header), "the caller's request is not modified")
			assert.Equal(t, api.URL+"/v1/things?x=1", req.URL.String())
		})
	}
}

// A body that cannot be read again (a pipe, no GetBody) is not resent: the
// refusal is returned as it came, after one request.
func TestRefusalWithAPipeBodyIsReturned(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			api := newServer(t, true, func(w http.ResponseWriter, _ *http.Request, _ int, _ string) {
				m.refuse(w)
				_, _ = io.WriteString(w, "go away")
			})
			c := newCreds(m.key)
			pr, pw := io.Pipe()
			go func() {
				_, _ = io.WriteString(pw, "streamed body")
				_ = pw.Close()
			}()
			req, err := http.NewRequest(http.MethodPost, api.URL+"/upload", pr)
			require.NoError(t, err)
			require.Nil(t, req.GetBody)
			resp, err := m.build(baseFor(t, api), c).RoundTrip(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.NotEqual(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "go away", string(b), "the refusal comes back readable")
			hits := api.Hits()
			require.Len(t, hits, 1, "not resent")
			assert.Equal(t, "streamed body", hits[0].Body)
			_, _, accepted := c.snapshot()
			assert.Empty(t, accepted)
		})
	}
}

// Design gap (see report): a refusal of a request whose body cannot be
// resent is never reported to the credentials, so the refused value stays
// current; with a token without expiry and only streaming uploads, every
// request is refused for ever. The gRPC engine reports every refusal it
// sees.
func TestRefusalWithAPipeBodyStillReportsTheRejection(t *testing.T) {
	api := newServer(t, true, func(w http.ResponseWriter, _ *http.Request, _ int, _ string) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	c := newCreds("authorization")
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "streamed body")
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, api.URL+"/upload", pr)
	require.NoError(t, err)
	resp, err := bearerTransport(baseFor(t, api), c).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	_, rejected, _ := c.snapshot()
	assert.Equal(t, []string{"Bearer tok-1"}, rejected, "the refused value should be reported, so that the next request carries a fresh one")
}

// A server that keeps refusing gets exactly two requests per call, never a
// loop, and Accepted is never called.
func TestAServerThatKeepsRefusingGetsTwoRequestsPerCall(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			api := newServer(t, true, func(w http.ResponseWriter, _ *http.Request, _ int, _ string) { m.refuse(w) })
			c := newCreds(m.key)
			client := &http.Client{Transport: m.build(baseFor(t, api), c)}
			for i := 1; i <= 3; i++ {
				req, err := http.NewRequest(http.MethodPost, api.URL+"/x", strings.NewReader("b"))
				require.NoError(t, err)
				resp, err := client.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				assert.NotEqual(t, http.StatusOK, resp.StatusCode)
				assert.Len(t, api.Hits(), 2*i)
			}
			_, rejected, accepted := c.snapshot()
			assert.Len(t, rejected, 3, "one Rejected per call")
			assert.Empty(t, accepted)
			// Each resend carried a fresh value.
			hits := api.Hits()
			for i := 0; i < len(hits); i += 2 {
				assert.NotEqual(t, m.credOf(hits[i]), m.credOf(hits[i+1]))
			}
		})
	}
}

// Answers that are not a refusal are the credential's acceptance, whatever
// their status; a 401 without Proxy-Authenticate is not the proxy's
// refusal.
func TestAcceptedOnNonRefusedAnswers(t *testing.T) {
	for _, tc := range []struct {
		m      mode
		status int
		hdr    http.Header
	}{
		{modes[0], http.StatusOK, nil},
		{modes[0], http.StatusForbidden, nil},
		{modes[0], http.StatusInternalServerError, nil},
		{modes[0], http.StatusProxyAuthRequired, nil}, // not the bearer's refusal
		{modes[1], http.StatusOK, nil},
		{modes[1], http.StatusUnauthorized, nil}, // the service's own 401: the proxy let it through
		{modes[1], http.StatusBadGateway, nil},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.m.name, tc.status), func(t *testing.T) {
			api := newServer(t, true, func(w http.ResponseWriter, _ *http.Request, _ int, _ string) {
				w.WriteHeader(tc.status)
			})
			c := newCreds(tc.m.key)
			req, err := http.NewRequest(http.MethodGet, api.URL+"/x", nil)
			require.NoError(t, err)
			resp, err := tc.m.build(baseFor(t, api), c).RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Len(t, api.Hits(), 1)
			_, rejected, accepted := c.snapshot()
			assert.Empty(t, rejected)
			assert.Equal(t, []string{"Bearer tok-1"}, accepted)
		})
	}
}

// When no new credential can be got after a refusal (Rejected fails, or
// the next Credential fails), the refusal is returned as it came, after
// one request, and the replay body is closed.
func TestRefusalWithoutANewCredential(t *testing.T) {
	for _, which := range []string{"rejected fails", "credential fails"} {
		t.Run(which, func(t *testing.T) {
			api := newServer(t, true, func(w http.ResponseWriter, _ *http.Request, _ int, _ string) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, "nope")
			})
			c := newCreds("authorization")
			if which == "rejected fails" {
				c.rejErr = errors.New("idp down")
			} else {
				c.credErr, c.credErrAt = errors.New("idp down"), 2
			}
			var replay *trackedBody
			req, err := http.NewRequest(http.MethodPost, api.URL+"/x", strings.NewReader("b"))
			require.NoError(t, err)
			req.GetBody = func() (io.ReadCloser, error) {
				replay = &trackedBody{Reader: strings.NewReader("b")}
				return replay, nil
			}
			resp, err := bearerTransport(baseFor(t, api), c).RoundTrip(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, "nope", string(b))
			assert.Len(t, api.Hits(), 1)
			if replay != nil {
				assert.True(t, replay.closed.Load(), "the unused replay body is closed")
			}
			_, _, accepted := c.snapshot()
			assert.Empty(t, accepted)
		})
	}
}

// ---------------------------------------------------------------------------
// A credential that cannot be got
// ---------------------------------------------------------------------------

func TestCredentialThatCannotBeGot(t *testing.T) {
	const secret = "s3cr3t-in-error"
	t.Run("failed: error, nothing sent, body closed", func(t *testing.T) {
		for _, build := range []struct {
			name string
			rt   func(base http.RoundTripper, c *fakeCreds) http.RoundTripper
		}{
			{"httpauth", func(base http.RoundTripper, c *fakeCreds) http.RoundTripper {
				return bearerTransport(base, c)
			}},
			{"ProxyTransport", func(base http.RoundTripper, c *fakeCreds) http.RoundTripper {
				return interceptor.ProxyTransport(c, base)
			}},
		} {
			t.Run(build.name, func(t *testing.T) {
				api := newServer(t, true, ok)
				cause := errors.New("proxy command failed")
				c := newCreds("proxy-authorization")
				c.credErr = cause
				body := &trackedBody{Reader: strings.NewReader("payload")}
				req, err := http.NewRequest(http.MethodPost, api.URL+"/x?access_token="+secret, body)
				require.NoError(t, err)
				resp, err := build.rt(baseFor(t, api), c).RoundTrip(req)
				require.Error(t, err)
				assert.Nil(t, resp)
				assert.ErrorIs(t, err, cause)
				noSecret(t, err, secret)
				assert.Empty(t, api.Hits(), "the request is not sent")
				assert.True(t, body.closed.Load(), "the request body is closed")
			})
		}
	})
	t.Run("none yet: sent without a credential", func(t *testing.T) {
		api := newServer(t, true, ok)
		c := newCreds("authorization")
		c.credErr = fmt.Errorf("lazy start: %w", notyet.Err)
		req, err := http.NewRequest(http.MethodPost, api.URL+"/x", strings.NewReader("payload"))
		require.NoError(t, err)
		resp, err := bearerTransport(baseFor(t, api), c).RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		hits := api.Hits()
		require.Len(t, hits, 1)
		noCredential(t, hits, "no credential at hand")
		assert.Equal(t, "payload", hits[0].Body)
	})
	t.Run("caller's context ended: error, nothing sent", func(t *testing.T) {
		api := newServer(t, true, ok)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c := newCreds("authorization")
		c.credErr = context.Canceled
		body := &trackedBody{Reader: strings.NewReader("payload")}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/x", body)
		require.NoError(t, err)
		_, err = bearerTransport(baseFor(t, api), c).RoundTrip(req)
		require.ErrorIs(t, err, context.Canceled)
		noSecret(t, err)
		assert.Empty(t, api.Hits())
		assert.True(t, body.closed.Load())
	})
}

// ---------------------------------------------------------------------------
// Transport security
// ---------------------------------------------------------------------------

func TestPlainHTTPToANonLoopbackHost(t *testing.T) {
	const secret = "pa55word"
	errRefuse := errors.New("insecure endpoint (test)")
	target := "http://user:" + secret + "@api.example.com/v1/x?token=" + secret + "#frag-" + secret

	t.Run("Refuse set: error wrapping it, nothing sent, body closed", func(t *testing.T) {
		rec := &recorder{}
		c := newCreds("authorization")
		tr := bearerTransport(rec, c)
		tr.Refuse = errRefuse
		body := &trackedBody{Reader: strings.NewReader("payload")}
		req, err := http.NewRequest(http.MethodPost, target, body)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		assert.Nil(t, resp)
		require.ErrorIs(t, err, errRefuse)
		noSecret(t, err, secret)
		assert.Empty(t, rec.Reqs(), "nothing sent")
		assert.True(t, body.closed.Load())
		creds, _, _ := c.snapshot()
		assert.Zero(t, creds, "no credential is even asked for")
	})
	t.Run("Refuse unset: sent without a credential", func(t *testing.T) {
		for _, m := range modes {
			rec := &recorder{}
			c := newCreds(m.key)
			req, err := http.NewRequest(http.MethodGet, target, nil)
			require.NoError(t, err)
			resp, err := m.build(rec, c).RoundTrip(req)
			require.NoError(t, err, m.name)
			resp.Body.Close()
			reqs := rec.Reqs()
			require.Len(t, reqs, 1, m.name)
			assert.Empty(t, reqs[0].Header.Get("Authorization"), m.name)
			assert.Empty(t, reqs[0].Header.Get("Proxy-Authorization"), m.name)
		}
	})
	t.Run("AllowHTTP: carried", func(t *testing.T) {
		rec := &recorder{}
		tr := bearerTransport(rec, newCreds("authorization"))
		tr.AllowHTTP = true
		tr.Refuse = errRefuse
		req, err := http.NewRequest(http.MethodGet, "http://api.example.com/x", nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Len(t, rec.Reqs(), 1)
		assert.Equal(t, "Bearer tok-1", rec.Reqs()[0].Header.Get("Authorization"))

		rec = &recorder{}
		pt := interceptor.ProxyTransport(newCreds("proxy-authorization"), rec, interceptor.WithInsecure())
		req, err = http.NewRequest(http.MethodGet, "http://api.example.com/x", nil)
		require.NoError(t, err)
		resp, err = pt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "Bearer tok-1", rec.Reqs()[0].Header.Get("Proxy-Authorization"))
	})
	t.Run("loopback plain http: carried", func(t *testing.T) {
		for _, u := range []string{"http://127.0.0.1:8080/x", "http://localhost/x", "http://LOCALHOST:1/x", "http://[::1]:9/x", "http://127.1.2.3/x"} {
			rec := &recorder{}
			tr := bearerTransport(rec, newCreds("authorization"))
			tr.Refuse = errRefuse
			req, err := http.NewRequest(http.MethodGet, u, nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err, u)
			resp.Body.Close()
			require.Len(t, rec.Reqs(), 1, u)
			assert.Equal(t, "Bearer tok-1", rec.Reqs()[0].Header.Get("Authorization"), u)
		}
		// And a real loopback server.
		api := newServer(t, false, ok)
		code, _ := get(t, &http.Client{Transport: bearerTransport(nil, newCreds("authorization"))}, api.URL+"/x")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "Bearer tok-1", api.Hits()[0].Auth)
	})
	t.Run("hosts that only look like loopback: not carried", func(t *testing.T) {
		for _, u := range []string{"http://localhost.evil.example/x", "http://127.0.0.1.nip.io/x", "http://0x7f000001/x", "http://[::ffff:8.8.8.8]/x"} {
			rec := &recorder{}
			tr := bearerTransport(rec, newCreds("authorization"))
			req, err := http.NewRequest(http.MethodGet, u, nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err, u)
			resp.Body.Close()
			require.Len(t, rec.Reqs(), 1, u)
			assert.Empty(t, rec.Reqs()[0].Header.Get("Authorization"), u)
		}
	})
}

// A base transport's own error is returned, and names no credential.
func TestBaseErrorNamesNoCredential(t *testing.T) {
	api := newServer(t, true, ok)
	u := api.URL
	api.Close() // nothing listens any more
	for _, m := range modes {
		c := newCreds(m.key)
		client := &http.Client{Transport: m.build(nil, c)}
		_, err := client.Get(u + "/x")
		noSecret(t, err)
	}
}

// ---------------------------------------------------------------------------
// Through the Keeper (authenticator.New with a FlowFunc)
// ---------------------------------------------------------------------------

func TestKeeperTransportRefreshesOnce(t *testing.T) {
	var flows atomic.Int32
	k := newKeeper(t, &flows)
	api := newServer(t, true, func(w http.ResponseWriter, r *http.Request, n int, body string) {
		if r.Header.Get("Authorization") != "Bearer tok-2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ok(w, r, n, body)
	})
	client := &http.Client{Transport: k.Transport(baseFor(t, api))}
	req, err := http.NewRequest(http.MethodPost, api.URL+"/api/v1/projects", strings.NewReader(`{"id":"p"}`))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, `ok:{"id":"p"}`, string(b))
	assert.EqualValues(t, 2, flows.Load())
	hits := api.Hits()
	require.Len(t, hits, 2)
	assert.Equal(t, []string{"Bearer tok-1", "Bearer tok-2"}, []string{hits[0].Auth, hits[1].Auth})
	assert.Equal(t, hits[0].Body, hits[1].Body)
	assert.Empty(t, req.Header.Get("Authorization"))
}

func TestKeeperTransportRefusesPlainHTTP(t *testing.T) {
	var flows atomic.Int32
	k := newKeeper(t, &flows)
	rec := &recorder{}
	_, err := (&http.Client{Transport: k.Transport(rec)}).Get("http://admin.example/api/v1/x")
	require.ErrorIs(t, err, authenticator.ErrInsecureEndpoint)
	noSecret(t, err)
	assert.Empty(t, rec.Reqs())
	assert.Zero(t, flows.Load(), "no token is got for a request that may not carry it")
}

// Keeper.Transport's documentation: "A redirect to another scheme or host
// goes without the token." The other host must never see the token, and
// the redirect must be followed.
func TestKeeperTransportRedirectToAnotherHost(t *testing.T) {
	for _, target := range []string{"https://other.test/landing", "http://api.test/landing"} {
		t.Run(target, func(t *testing.T) {
			var flows atomic.Int32
			k := newKeeper(t, &flows)
			plain := newServer(t, false, ok)
			tlsSrv := newServer(t, true, func(w http.ResponseWriter, r *http.Request, _ int, body string) {
				if r.Host == "api.test" {
					http.Redirect(w, r, target, http.StatusFound)
					return
				}
				ok(w, r, 0, body)
			})
			client := &http.Client{Transport: k.Transport(newRouter(t, tlsSrv, plain))}
			resp, err := client.Get("https://api.test/start")
			if err == nil {
				resp.Body.Close()
			}
			var rest []hit
			for _, h := range append(tlsSrv.Hits(), plain.Hits()...) {
				if h.Host == "api.test" && h.Path == "/start" {
					assert.Equal(t, "Bearer tok-1", h.Auth)
				} else {
					rest = append(rest, h)
				}
			}
			noCredential(t, rest, "redirect target")
			require.NoError(t, err, "the redirect goes without the token, as documented; it does not fail")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Len(t, rest, 1)
		})
	}
}

// WithLazyStart: "sends calls without a token until a server rejects one:
// only then does the Keeper get a token". Through Keeper.Transport the
// first request goes without a token and is refused; the transport must
// report the refusal (Rejected(ctx, "")) so that a token is got, and resend.
func TestKeeperTransportLazyStart(t *testing.T) {
	var flows atomic.Int32
	k := newKeeper(t, &flows, authenticator.WithLazyStart())
	api := newServer(t, true, func(w http.ResponseWriter, r *http.Request, n int, body string) {
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ok(w, r, n, body)
	})
	client := &http.Client{Transport: k.Transport(baseFor(t, api))}
	for range 2 {
		code, _ := get(t, client, api.URL+"/api/v1/x")
		assert.Equal(t, http.StatusOK, code, "a lazy keeper's transport gets a token once the server asks for one")
	}
	assert.EqualValues(t, 1, flows.Load())
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

// 50 goroutines share a transport; the server revokes the first token
// mid-way. No data race, and every request succeeds (each one that carried
// the revoked token is resent once with a fresh one).
func TestConcurrentUseWithARefusalMidway(t *testing.T) {
	const goroutines = 50
	newAPI := func(t *testing.T, header string) *server {
		var revoked atomic.Bool
		return newServer(t, true, func(w http.ResponseWriter, r *http.Request, n int, body string) {
			v := r.Header.Get(header)
			if n >= goroutines/2 {
				revoked.Store(true)
			}
			if !strings.HasPrefix(v, "Bearer tok-") || (revoked.Load() && v == "Bearer tok-1") {
				if header == "Proxy-Authorization" {
					w.WriteHeader(http.StatusProxyAuthRequired)
				} else {
					w.WriteHeader(http.StatusUnauthorized)
				}
				return
			}
			ok(w, r, n, body)
		})
	}
	run := func(t *testing.T, api *server, rt http.RoundTripper) {
		client := &http.Client{Transport: rt}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, goroutines)
		for i := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				body := fmt.Sprintf("request %d", i)
				req, err := http.NewRequest(http.MethodPost, api.URL+"/x", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != "ok:"+body {
					errs <- fmt.Errorf("request %d: %d %q", i, resp.StatusCode, b)
				}
				if req.Header.Get("Authorization") != "" || req.Header.Get("Proxy-Authorization") != "" {
					errs <- fmt.Errorf("request %d: the caller's request was modified", i)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	for _, m := range modes[:2] {
		t.Run("fake/"+m.name, func(t *testing.T) {
			api := newAPI(t, m.header)
			c := newCreds(m.key)
			run(t, api, m.build(baseFor(t, api), c))
			_, rejected, _ := c.snapshot()
			assert.NotEmpty(t, rejected, "the revocation was seen")
			for _, v := range rejected {
				assert.Equal(t, "Bearer tok-1", v, "only the revoked token is rejected")
			}
		})
	}
	t.Run("keeper", func(t *testing.T) {
		var flows atomic.Int32
		k := newKeeper(t, &flows)
		api := newAPI(t, "Authorization")
		run(t, api, k.Transport(baseFor(t, api)))
		assert.EqualValues(t, 2, flows.Load(), "the keeper gets one token at first and one after the revocation")
	})
}

// sharedBody is a request body whose GetBody hands back the same reader,
// rewound, as connect-go's unary calls do.
type sharedBody struct {
	mu sync.Mutex
	r  *strings.Reader
}

func (b *sharedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r.Read(p)
}

func (b *sharedBody) Close() error { return nil }

func (b *sharedBody) rewind() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.r.Seek(0, io.SeekStart)
	return b, err
}

// lateReader is a base transport that answers the first request with a
// refusal before reading its body, and reads that body only later, once the
// second request is on its way, as an HTTP/2 transport may
// (http.RoundTripper allows a transport to use the body after RoundTrip
// returns). The second request's body is read after the first one's late
// read has ended.
type lateReader struct {
	n        int
	second0  chan struct{} // closed when the second request starts
	lateDone chan struct{}
	late     string // what the first request's late read got
	second   string // the second request's body
}

func (l *lateReader) RoundTrip(r *http.Request) (*http.Response, error) {
	l.n++
	status := http.StatusOK
	if l.n == 1 {
		status = http.StatusUnauthorized
		go func() {
			defer close(l.lateDone)
			<-l.second0
			b, _ := io.ReadAll(r.Body)
			l.late = string(b)
		}()
	} else {
		close(l.second0)
		<-l.lateDone
		b, _ := io.ReadAll(r.Body)
		l.second = string(b)
	}
	return &http.Response{
		StatusCode: status, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: http.Header{}, Body: http.NoBody, Request: r,
	}, nil
}

// TestRetryBodyIsNotReadByTheFirstAttempt: a transport that goes on
// reading the first request's body after answering cannot take the bytes of
// the second request when GetBody gives the same reader back (connect-go's
// unary calls behind a proxy that refused the proxy token: the retry went
// out with an empty body and the proxy answered 502).
func TestRetryBodyIsNotReadByTheFirstAttempt(t *testing.T) {
	const payload = "the request body"
	body := &sharedBody{r: strings.NewReader(payload)}
	req, err := http.NewRequest(http.MethodPost, "https://api.example/v1/echo", body)
	require.NoError(t, err)
	req.ContentLength = int64(len(payload))
	req.GetBody = body.rewind
	base := &lateReader{second0: make(chan struct{}), lateDone: make(chan struct{})}
	resp, err := bearerTransport(base, newCreds("authorization")).RoundTrip(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, payload, base.second, "the second request carries the whole body")
	assert.Empty(t, base.late, "the first request's late read got nothing of it")
}
