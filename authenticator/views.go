package authenticator

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// TokenSource returns the Keeper as an oauth2.TokenSource, for HTTP clients
// and the rest of the x/oauth2 ecosystem (oauth2.NewClient,
// oauth2.ReuseTokenSource). Its Token is Keeper.Token without a context:
// it waits at most the token timeout.
func (k *Keeper) TokenSource() oauth2.TokenSource { return tokenSource{k} }

type tokenSource struct{ k *Keeper }

func (s tokenSource) Token() (*oauth2.Token, error) { return s.k.Token(context.Background()) }

// PerRPCCredentials returns the Keeper as gRPC per-RPC credentials, for
// grpc.WithPerRPCCredentials or the grpc.PerRPCCredentials call option.
// The token goes only over a transport with privacy and integrity (TLS,
// ALTS) or a local one, decided for the transport each call uses (see
// internal/transportsec); a call on any other transport fails with
// codes.Unauthenticated before anything is sent. allowInsecure lifts that
// rule (Flyte's insecure: true).
//
// Per-RPC credentials cannot see a call's answer, so this view refreshes
// before expiry and at expiry, but not when the server rejects a token; the
// interceptor package does that too, and is the primary gRPC interface.
func (k *Keeper) PerRPCCredentials(allowInsecure bool) credentials.PerRPCCredentials {
	return perRPC{k: k, allowInsecure: allowInsecure}
}

type perRPC struct {
	k             *Keeper
	allowInsecure bool
}

func (p perRPC) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if !p.allowInsecure {
		if secure, method := transportsec.SecureContext(ctx); !secure {
			return nil, status.Errorf(codes.Unauthenticated, "grpcauth: not sending the token for %s: the transport has no transport security; use TLS, or allow plaintext explicitly (Flyte's insecure: true)", method)
		}
	}
	key, value, ok := p.k.FetchGRPCCallAuthMetadata(ctx)
	if !ok {
		err := p.k.recentFailure(false)
		if err == nil {
			err = fmt.Errorf("authenticator: no token")
		}
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return map[string]string{key: value}, nil
}

// RequireTransportSecurity is true unless insecure transports were allowed,
// so that grpc-go refuses the credentials on a connection built without
// transport security. GetRequestMetadata checks each call's transport too.
func (p perRPC) RequireTransportSecurity() bool { return !p.allowInsecure }

// Transport returns an http.RoundTripper that sends each request through
// base (http.DefaultTransport if nil) with the Keeper's token in the
// Authorization header, for FlyteAdmin's HTTP API (the
// service_http_endpoint of GetPublicClientConfig). When the answer is 401,
// it refreshes the token and sends the request once more, if the request
// has no body or one that can be read again (Request.GetBody, which
// http.NewRequest sets for bytes, strings and bytes.Buffer bodies);
// otherwise the 401 is returned. A token goes only to https:// URLs, or to
// http:// on loopback, unless WithAllowHTTP was given; any other request
// fails without being sent.
func (k *Keeper) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{k: k, base: base}
}

// HTTPClient returns an *http.Client whose requests carry the Keeper's
// token (see Transport).
func (k *Keeper) HTTPClient() *http.Client {
	return &http.Client{Transport: k.Transport(nil)}
}

type transport struct {
	k    *Keeper
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, fmt.Errorf("authenticator: request without a URL")
	}
	if err := t.k.checkCleartext("URL", req.URL.String()); err != nil {
		closeBody(req)
		return nil, fmt.Errorf("authenticator: %w", err)
	}
	_, value, ok := t.k.FetchGRPCCallAuthMetadata(req.Context())
	if !ok {
		closeBody(req)
		if err := t.k.recentFailure(false); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("authenticator: no token for %s", redactURL(req.URL.String()))
	}
	resp, err := t.base.RoundTrip(withAuth(req, value))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		if err == nil {
			t.k.Accepted(value)
		}
		return resp, err
	}
	replay := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replay {
		return resp, nil
	}
	if rerr := t.k.RefreshRejected(req.Context(), value); rerr != nil {
		return resp, nil // the 401 stands; the refresh failure is logged by the Keeper
	}
	_, next, ok := t.k.FetchGRPCCallAuthMetadata(req.Context())
	if !ok {
		return resp, nil
	}
	again := withAuth(req, next)
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		again.Body = body
	}
	// The first answer is dropped only now that a second request can go.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp, err = t.base.RoundTrip(again)
	if err == nil && resp.StatusCode != http.StatusUnauthorized {
		t.k.Accepted(next)
	}
	return resp, err
}

// withAuth returns a copy of req carrying value in the Authorization
// header; a RoundTripper must not change the request it was given.
func withAuth(req *http.Request, value string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", value)
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
