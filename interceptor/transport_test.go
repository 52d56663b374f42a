package interceptor_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// plaintextKey marks, in a resolver.Address's attributes, a backend that
// perAddressCreds reaches without TLS.
type plaintextKey struct{}

// perAddressCreds are transport credentials that choose per address, as
// xDS credentials with a plaintext fallback do: plaintext for an address
// marked with plaintextKey, TLS for the others.
type perAddressCreds struct {
	tls, plain credentials.TransportCredentials
}

func (c perAddressCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if credentials.ClientHandshakeInfoFromContext(ctx).Attributes.Value(plaintextKey{}) != nil {
		return c.plain.ClientHandshake(ctx, authority, conn)
	}
	return c.tls.ClientHandshake(ctx, authority, conn)
}

func (c perAddressCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.tls.ServerHandshake(conn)
}

func (c perAddressCreds) Info() credentials.ProtocolInfo { return c.tls.Info() }

func (c perAddressCreds) Clone() credentials.TransportCredentials {
	return perAddressCreds{tls: c.tls.Clone(), plain: c.plain.Clone()}
}

//nolint:staticcheck // part of the interface
func (c perAddressCreds) OverrideServerName(string) error { return nil }

func TestOneConnectionMixingTLSAndPlaintextNeverSendsTokenInClear(t *testing.T) {
	// One ClientConn, two backends behind round_robin: one reached over
	// TLS, one over plaintext. The TLS one is used first; from then on the
	// plaintext one must still never receive the token, whatever the call
	// shape and however the balancer alternates.
	f := newFakeAuth()
	require.NoError(t, f.RefreshCredentials(t.Context()))
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	secure, err := testserver.NewAdminServer(testserver.WithAdminTLS(ca), testserver.WithValidator(f))
	require.NoError(t, err)
	t.Cleanup(secure.Close)
	plain, err := testserver.NewAdminServer() // open: answers without a token
	require.NoError(t, err)
	t.Cleanup(plain.Close)

	tlsAddr := resolver.Address{Addr: "tls-backend"}
	plainAddr := resolver.Address{Addr: "plain-backend", Attributes: attributes.New(plaintextKey{}, true)}
	r := manual.NewBuilderWithScheme("mixed")
	r.InitialState(resolver.State{Addresses: []resolver.Address{tlsAddr}})
	conn, err := grpc.NewClient("mixed:///bufnet", // the TLS certificate's name
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			if addr == plainAddr.Addr {
				return plain.Dialer()(ctx, addr)
			}
			return secure.Dialer()(ctx, addr)
		}),
		grpc.WithTransportCredentials(perAddressCreds{tls: credentials.NewTLS(ca.ClientTLSConfig()), plain: insecure.NewCredentials()}),
		grpc.WithUnaryInterceptor(interceptor.UnaryClientInterceptor(f)),
		grpc.WithStreamInterceptor(interceptor.StreamClientInterceptor(f)),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	echo := testserver.NewEchoClient(conn)

	for _, sh := range shapes {
		got, err := sh.call(testContext(t), echo)
		require.NoError(t, err, "%s over TLS", sh.name)
		assert.Equal(t, sh.want, got)
		require.Equal(t, []string{f.current()}, secure.LastEchoMetadata().Get(authenticator.DefaultHeaderKey), "%s over TLS", sh.name)
	}
	require.Zero(t, plain.EchoCalls())

	r.UpdateState(resolver.State{Addresses: []resolver.Address{tlsAddr, plainAddr}})
	const plainCalls = 40
	secureBefore := secure.EchoCalls()
	for i := 0; plain.EchoCalls() < plainCalls; i++ {
		require.Less(t, i, 100*plainCalls, "round_robin never picked the plaintext backend")
		sh := shapes[i%len(shapes)]
		got, err := sh.call(testContext(t), echo)
		require.NoError(t, err, "%s, call %d", sh.name, i)
		assert.Equal(t, sh.want, got)
		require.Empty(t, plain.LastEchoMetadata().Get(authenticator.DefaultHeaderKey), "%s, call %d: the plaintext backend received the token", sh.name, i)
	}
	assert.Greater(t, secure.EchoCalls(), secureBefore, "the TLS backend kept serving calls")
	assert.EqualValues(t, 1, f.refreshes.Load(), "no refresh beyond the first token")
}
