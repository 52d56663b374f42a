package connectauth_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth/connectauth"
)

type staticAuth struct{ v string }

func (s staticAuth) Credential(context.Context) (string, string, error) {
	return "authorization", s.v, nil
}
func (staticAuth) Rejected(context.Context, string) error { return nil }
func (staticAuth) Accepted(string)                        {}

// A request sent through one interceptor and then, reused, through one that
// withholds its token (plain HTTP to another host) carries no token the
// second time, and the caller's request keeps none.
func TestReusedRequestCarriesNoEarlierToken(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Host+" Authorization="+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/proto")
		w.WriteHeader(200)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	// Every host name dials the test server.
	tr := &http.Transport{DialContext: func(ctx context.Context, n, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, n, srv.Listener.Addr().String())
	}}
	hc := &http.Client{Transport: tr}

	ia, _ := connectauth.NewInterceptor(staticAuth{"Bearer TOKEN-OF-A"}, "http://localhost:"+port)
	ib, _ := connectauth.NewInterceptor(staticAuth{"Bearer TOKEN-OF-B"}, "http://dev-b.example:"+port) // plain http, not loopback: withheld
	a := connect.NewClient[emptypb.Empty, emptypb.Empty](hc, "http://localhost:"+port+"/svc/M", connect.WithInterceptors(ia))
	b := connect.NewClient[emptypb.Empty, emptypb.Empty](hc, "http://dev-b.example:"+port+"/svc/M", connect.WithInterceptors(ib))

	req := connect.NewRequest(&emptypb.Empty{})
	_, _ = a.CallUnary(context.Background(), req)
	assert.Empty(t, req.Header().Get("Authorization"), "the caller's request keeps no token of ours")
	_, _ = b.CallUnary(context.Background(), req) // the same request, reused
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2)
	assert.Equal(t, "localhost:"+port+" Authorization=Bearer TOKEN-OF-A", seen[0])
	assert.Equal(t, "dev-b.example:"+port+" Authorization=", seen[1], "no token over plain HTTP to another host")
	assert.Empty(t, req.Header().Get("Authorization"))
}
