package interceptor_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

func TestAttachesTokenUnderConfiguredKeyBesideCallerMetadata(t *testing.T) {
	const key = "flyte-authorization"
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{headerKey: key})
			e.prime(t)
			want := e.token(t)
			// Each call decides for its own transport: both must carry the
			// same metadata.
			for i := range 2 {
				ctx := metadata.AppendToOutgoingContext(testContext(t), "x-caller", "1")
				got, err := sh.call(ctx, e.echo)
				require.NoError(t, err, "call %d", i)
				assert.Equal(t, sh.want, got)

				md := e.admin.LastEchoMetadata()
				assert.Equal(t, []string{"1"}, md.Get("x-caller"), "call %d: the caller's metadata", i)
				assert.Equal(t, []string{want}, md.Get(key), "call %d: the token under the configured key", i)
				assert.Empty(t, md.Get(authenticator.DefaultHeaderKey), "call %d: the token under the default key", i)
			}
			assert.Zero(t, e.tokens.Requests())
			assert.EqualValues(t, 2, e.admin.EchoCalls())
		})
	}
}

func TestAttachesTokenUnderKeyAdvertisedByTheServer(t *testing.T) {
	const key = "x-flyte-auth"
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{headerKey: key, keyFromStore: true, remote: true})
			ctx := metadata.AppendToOutgoingContext(testContext(t), "x-caller", "1")
			got, err := sh.call(ctx, e.echo)
			require.NoError(t, err)
			assert.Equal(t, sh.want, got)

			md := e.admin.LastEchoMetadata()
			assert.Equal(t, []string{"1"}, md.Get("x-caller"))
			assert.Equal(t, []string{e.token(t)}, md.Get(key))
			assert.Empty(t, md.Get(authenticator.DefaultHeaderKey))
		})
	}
}

func TestNoTokenOpenServerPassesWithoutTokenRequest(t *testing.T) {
	// An authenticator that holds no token (the fake does not fetch one
	// on first use): a call the server accepts without one costs no
	// refresh and no retry.
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			var retries counter
			e := newFakeEnv(t, envConfig{open: true, opts: []interceptor.Option{retries.option()}})
			got, err := sh.call(testContext(t), e.echo)
			require.NoError(t, err)
			assert.Equal(t, sh.want, got)
			assert.Zero(t, e.auth.refreshes.Load())
			assert.EqualValues(t, 1, e.admin.EchoCalls())
			assert.Empty(t, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey))
			assert.Zero(t, retries.n.Load())
			assert.Empty(t, e.auth.acceptedValues(), "no token was accepted")
		})
	}
}

func TestPlaintextWithoutOptInSendsNoToken(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{plaintext: true})
			e.prime(t)
			// Every call decides for its own transport, the first as the
			// second.
			for i := range 2 {
				_, err := sh.call(testContext(t), e.echo)
				require.Error(t, err, "call %d", i)
				assert.Equal(t, codes.Unauthenticated, status.Code(err), "call %d: %v", i, err)
				assert.Contains(t, status.Convert(err).Message(), "transport security", "call %d", i)
				assert.Contains(t, status.Convert(err).Message(), "WithInsecure", "call %d", i)
				assert.Empty(t, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey), "call %d: the server saw a token", i)
			}
			assert.Zero(t, e.tokens.Requests(), "a refresh cannot help")
			assert.EqualValues(t, 2, e.admin.EchoCalls(), "a retry cannot help")
		})
	}
}

func TestPlaintextWithoutOptInNoTokenYet(t *testing.T) {
	// The first attempt has no token to withhold; the refresh gets one, and
	// the retry withholds it on the plaintext transport: the error says so.
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newFakeEnv(t, envConfig{plaintext: true})
			_, err := sh.call(testContext(t), e.echo)
			require.Error(t, err)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), "transport security")
			assert.EqualValues(t, 1, e.auth.refreshes.Load())
			assert.EqualValues(t, 2, e.admin.EchoCalls())
			assert.Empty(t, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey))

			// With a token held, it is withheld at once, and the rejection
			// causes no refresh.
			_, err = sh.call(testContext(t), e.echo)
			assert.Contains(t, status.Convert(err).Message(), "transport security")
			assert.EqualValues(t, 1, e.auth.refreshes.Load())
			assert.EqualValues(t, 3, e.admin.EchoCalls())
		})
	}
}

func TestPlaintextWithInsecureSendsToken(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newEnv(t, envConfig{plaintext: true, opts: []interceptor.Option{interceptor.WithInsecure()}})
			e.prime(t)
			for i := range 2 {
				got, err := sh.call(testContext(t), e.echo)
				require.NoError(t, err, "call %d", i)
				assert.Equal(t, sh.want, got)
				assert.Equal(t, []string{e.token(t)}, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey))
			}
			assert.Zero(t, e.tokens.Requests())
		})
	}
}

func TestPlaintextOpenServerGetsNoToken(t *testing.T) {
	// A server that needs no token is not sent one over plaintext either.
	e := newEnv(t, envConfig{plaintext: true, open: true})
	e.prime(t)
	for _, sh := range shapes {
		got, err := sh.call(testContext(t), e.echo)
		require.NoError(t, err, sh.name)
		assert.Equal(t, sh.want, got)
		assert.Empty(t, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey), sh.name)
	}
}

func TestInterceptorSharedBySecureAndPlaintextConnections(t *testing.T) {
	// One interceptor pair on two connections: the token goes over TLS
	// and never over plaintext, however the calls alternate.
	secure := newEnv(t, envConfig{})
	secure.prime(t)
	plain, err := testserver.NewAdminServer(testserver.WithValidator(secure.tokens))
	require.NoError(t, err)
	t.Cleanup(plain.Close)

	unary := interceptor.UnaryClientInterceptor(secure.auth)
	stream := interceptor.StreamClientInterceptor(secure.auth)
	connect := func(admin *testserver.AdminServer) *testserver.EchoClient {
		conn, err := grpc.NewClient(admin.Addr(), append([]grpc.DialOption{
			grpc.WithUnaryInterceptor(unary), grpc.WithStreamInterceptor(stream),
		}, admin.DialOptions()...)...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return testserver.NewEchoClient(conn)
	}
	overTLS, overPlain := connect(secure.admin), connect(plain)
	for i := range 3 {
		for _, sh := range shapes {
			got, err := sh.call(testContext(t), overTLS)
			require.NoError(t, err, "%s over TLS, round %d", sh.name, i)
			assert.Equal(t, sh.want, got)

			_, err = sh.call(testContext(t), overPlain)
			assert.Contains(t, status.Convert(err).Message(), "transport security", "%s over plaintext, round %d", sh.name, i)
			assert.Empty(t, plain.LastEchoMetadata().Get(authenticator.DefaultHeaderKey), "%s over plaintext, round %d", sh.name, i)
		}
	}
	assert.Zero(t, secure.tokens.Requests())
}

func TestAuthMetadataServiceOnSameConnectionIsAnonymous(t *testing.T) {
	e := newEnv(t, envConfig{remote: true})
	ctx := testContext(t)

	// No token yet: the first call is rejected, the refresh asks the
	// config store, whose RPCs go through the same interceptors. Were they
	// not skipped, they would wait for the refresh they serve.
	got, err := e.echo.Unary(ctx, "hi")
	require.NoError(t, err)
	assert.Equal(t, "hi", got)
	assert.EqualValues(t, 1, e.tokens.Requests())
	oauth2Calls, publicCalls := e.admin.MetadataCalls()
	assert.EqualValues(t, 1, oauth2Calls)
	assert.EqualValues(t, 1, publicCalls)

	// With a token held, a new store on the same connection still sends
	// none, and a rejection of its RPCs is not retried.
	store, err := configstore.NewRemote(e.conn)
	require.NoError(t, err)
	cfg, err := store.GetClientConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, e.tokens.TokenURL(), cfg.TokenEndpoint)

	assert.False(t, e.admin.MetadataRPCsSawToken())
	for _, md := range e.admin.MetadataRPCHeaders() {
		assert.Empty(t, md.Get(authenticator.DefaultHeaderKey))
	}

	e.reset()
	e.admin.SetMetadataError(status.Error(codes.Unauthenticated, "metadata rejected"))
	store, err = configstore.NewRemote(e.conn)
	require.NoError(t, err)
	_, err = store.GetClientConfig(ctx)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	assert.Zero(t, e.tokens.Requests(), "a rejected metadata RPC caused a refresh")
	// Each RPC at most once (the store stops the other when one fails).
	oauth2Calls, publicCalls = e.admin.MetadataCalls()
	assert.LessOrEqual(t, oauth2Calls, int64(1), "a rejected metadata RPC was retried")
	assert.LessOrEqual(t, publicCalls, int64(1), "a rejected metadata RPC was retried")
	assert.False(t, e.admin.MetadataRPCsSawToken())
}

func TestWithSkipMethods(t *testing.T) {
	skipped := []string{testserver.EchoUnaryMethod, testserver.EchoServerStreamMethod}
	e := newEnv(t, envConfig{opts: []interceptor.Option{interceptor.WithSkipMethods(skipped...)}})
	e.prime(t)
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e.reset()
			got, err := sh.call(testContext(t), e.echo)
			if sh.name == "client-stream" || sh.name == "bidi" {
				require.NoError(t, err)
				assert.Equal(t, sh.want, got)
				assert.NotEmpty(t, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey))
				return
			}
			// Skipped: no token, no refresh, no retry.
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			assert.Empty(t, e.admin.LastEchoMetadata().Get(authenticator.DefaultHeaderKey))
			assert.EqualValues(t, 1, e.admin.EchoCalls())
			assert.Zero(t, e.tokens.Requests())
		})
	}
}

func TestNilAuthenticatorFailsWithInternal(t *testing.T) {
	admin, err := testserver.NewAdminServer()
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	var typedNil *authenticator.Keeper
	for name, a := range map[string]authenticator.Authenticator{
		"nil":       nil,
		"typed nil": typedNil,
	} {
		t.Run(name, func(t *testing.T) {
			echo := testserver.NewEchoClient(dial(t, admin, a, envConfig{}))
			for _, sh := range shapes {
				_, err := sh.call(testContext(t), echo)
				assert.Equal(t, codes.Internal, status.Code(err), "%s: %v", sh.name, err)
				assert.Contains(t, err.Error(), "nil authenticator", sh.name)
			}
			assert.Zero(t, admin.EchoCalls())
		})
	}
}

func TestLogsCarryNoToken(t *testing.T) {
	var logs testserver.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := []interceptor.Option{interceptor.WithLogger(logger)}
	secure := newEnv(t, envConfig{opts: opts})
	plain := newEnv(t, envConfig{plaintext: true, opts: opts})
	var tokens []string
	for _, sh := range shapes {
		_, err := sh.call(testContext(t), secure.echo) // refresh and retry
		require.NoError(t, err)
		tokens = append(tokens, secure.token(t))
		secure.tokens.RevokeAll()
		_, _ = sh.call(testContext(t), plain.echo) // withheld
		tokens = append(tokens, plain.token(t))
	}
	text := logs.String()
	assert.Contains(t, text, "refreshing credentials")
	assert.Contains(t, text, "withheld")
	assert.NotContains(t, text, clientSecret)
	for _, tok := range tokens {
		assert.NotContains(t, text, strings.TrimPrefix(tok, "Bearer "))
	}
}
