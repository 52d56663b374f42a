package benchmarks

import (
	"context"
	"net/http"
	"sync/atomic"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// naiveAuth is the comparison point of the storm: an interceptor that
// behaves as flytekit's AuthUnaryInterceptor with its
// ClientCredentialsAuthenticator does. Every call that fails with
// Unauthenticated or Unknown makes its own token request, then is sent once
// more. It is safe for concurrent use.
type naiveAuth struct {
	cfg  *clientcredentials.Config
	http *http.Client
	// bearer is the current "Bearer <token>", nil before the first one.
	bearer atomic.Pointer[string]
}

// refresh requests a token and makes it the current one.
func (a *naiveAuth) refresh(ctx context.Context) error {
	tok, err := a.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, a.http))
	if err != nil {
		return err
	}
	v := tok.Type() + " " + tok.AccessToken
	a.bearer.Store(&v)
	return nil
}

func (a *naiveAuth) withToken(ctx context.Context) context.Context {
	if v := a.bearer.Load(); v != nil {
		return metadata.AppendToOutgoingContext(ctx, headerKey, *v)
	}
	return ctx
}

// unary is the interceptor.
func (a *naiveAuth) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(a.withToken(ctx), method, req, reply, cc, opts...)
	if c := status.Code(err); c != codes.Unauthenticated && c != codes.Unknown {
		return err
	}
	if rerr := a.refresh(ctx); rerr != nil {
		return err
	}
	return invoker(a.withToken(ctx), method, req, reply, cc, opts...)
}
