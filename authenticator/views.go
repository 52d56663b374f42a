package authenticator

import (
	"context"
	"net/http"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/httpauth"
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
	key, value, err := p.k.Credential(ctx)
	if err != nil {
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
// http:// on loopback, unless WithInsecure was given; any other request
// fails without being sent. A redirect to another scheme or host goes
// without the token.
func (k *Keeper) Transport(base http.RoundTripper) http.RoundTripper {
	return &httpauth.Transport{
		Base:      base,
		Creds:     k,
		Header:    "Authorization",
		Refused:   func(r *http.Response) bool { return r.StatusCode == http.StatusUnauthorized },
		AllowHTTP: k.opts.allowHTTP,
		Refuse:    ErrInsecureEndpoint,
		What:      "token",
		Logger:    k.opts.logger,
	}
}
