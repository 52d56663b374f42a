package grpcretry

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/flyteauth/grpcauth/internal/retry"
)

type ctxKey struct{}

// fakeAuth: the current token is "old" until Rejected("old"); then "new".
// A call whose context carries ctxKey "A" loaded "old" before the refresh and
// returns it after (the window between Keeper.Credential's atomic load and
// attach's x.tok.Store, widened).
type fakeAuth struct {
	mu      sync.Mutex
	cur     string
	aGo     chan struct{}
	refresh atomic.Int32
}

func (f *fakeAuth) Credential(ctx context.Context) (string, string, error) {
	if ctx.Value(ctxKey{}) == "A" {
		<-f.aGo
		return "authorization", "Bearer old", nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return "authorization", f.cur, nil
}
func (f *fakeAuth) Rejected(ctx context.Context, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v == f.cur {
		f.refresh.Add(1)
		f.cur = "Bearer new"
	}
	return nil
}
func (f *fakeAuth) Accepted(string) {}

// On DialOptions' connection, an attempt goes out with the current token,
// never with one another call attached in the meantime: a call refused and
// refreshed retries with the new token though a concurrent call still
// holds the old one.
func TestConnCredsSendTheCurrentToken(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	var seen sync.Map // call id -> []string tokens seen
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		id := md.Get("call-id")[0]
		prev, _ := seen.Load(id)
		l, _ := prev.([]string)
		seen.Store(id, append(l, md.Get("authorization")...))
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer new" {
			return status.Error(codes.Unauthenticated, "bad token")
		}
		return ss.SendMsg(new(emptypb.Empty))
	}))
	go srv.Serve(lis)
	defer srv.Stop()

	f := &fakeAuth{cur: "Bearer old", aGo: make(chan struct{})}
	o := retry.NewOptions([]func(*retry.Options){func(o *retry.Options) { o.Insecure = true }})
	x := NewTokenAuth(f, o)

	bAttachedNew := make(chan struct{})
	aStored := make(chan struct{})
	var bAttempts atomic.Int32
	var aOnce sync.Once
	// A caller's own interceptor, inside New's (WithDialOptions comes after).
	inner := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		switch md.Get("call-id")[0] {
		case "B":
			if bAttempts.Add(1) == 2 { // B's retry has attached "new"
				close(bAttachedNew)
				<-aStored
			}
		case "A":
			aOnce.Do(func() { close(aStored) })
		}
		return inv(ctx, method, req, reply, cc, opts...)
	}
	mode := x.DialOptions()
	dial := append(mode,
		grpc.WithChainUnaryInterceptor(inner),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("passthrough:///buf", dial...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	go func() { <-bAttachedNew; close(f.aGo) }()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := metadata.AppendToOutgoingContext(context.WithValue(context.Background(), ctxKey{}, "A"), "call-id", "A")
		_ = cc.Invoke(ctx, "/svc/M", new(emptypb.Empty), new(emptypb.Empty))
	}()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "call-id", "B")
	errB := cc.Invoke(ctx, "/svc/M", new(emptypb.Empty), new(emptypb.Empty))
	wg.Wait()
	b, _ := seen.Load("B")
	t.Logf("call B: err=%v; tokens the server saw on B's two attempts: %v; refreshes=%d", errB, b, f.refresh.Load())
	if errB != nil {
		t.Errorf("B refreshed and its retry attached %q, yet went out with another call's token", "Bearer new")
	}
}
