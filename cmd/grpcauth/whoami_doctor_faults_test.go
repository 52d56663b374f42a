package main

// Faults of whoami's server question, doctor's proxy and login hops, and
// the identity fakes' fidelity to the servers they stand for.

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/userinfopb"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
	"github.com/flyteauth/grpcauth/tokencache"
)

// A server (or an ingress in front of it) that quotes the credential it
// refused in its status message: whoami reports the refusal without the
// token, which it never prints.
func TestWhoamiDoesNotPrintTheTokenTheServerQuotes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "flyteidl.service.IdentityService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "UserInfo", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(userinfopb.UserInfoRequest)); err != nil {
				return nil, err
			}
			md, _ := metadata.FromIncomingContext(ctx)
			return nil, status.Errorf(codes.Unauthenticated, "credential %q refused", strings.Join(md.Get("authorization"), ","))
		}}},
	}, struct{}{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	token := testJWT(t, jwt.MapClaims{"sub": "svc", "exp": time.Now().Add(time.Hour).Unix()})
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": tokenScript(t, token)})
	code, _, out, errOut := whoamiRows(t, env, "--endpoint", l.Addr().String(), "--insecure", "--auth-type", "ExternalCommand", "--authorization-header", "authorization")
	require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, errOut, "FlyteAdmin's flyteidl.service.IdentityService: Unauthenticated: credential", "the server's refusal is reported")
	assert.NotContains(t, out+errOut, token, "whoami printed the access token the server quoted")

	// A command that prints a new token each run: the retry's token, which
	// whoami never held, is hidden too.
	script := filepath.Join(t.TempDir(), "new-token.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nprintf 'tok-%s\\n' \"$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\"\n"), 0o700))
	env = fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": script})
	code, _, out, errOut = whoamiRows(t, env, "--endpoint", l.Addr().String(), "--insecure", "--auth-type", "ExternalCommand", "--authorization-header", "authorization")
	require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, errOut, `credential "Bearer <a token>" refused`)
	assert.NotRegexp(t, `tok-[0-9a-f]{8}`, errOut, "the retry's token was printed")
}

// The server refuses the kept access token and the identity provider the
// kept refresh token: only a login would do, so whoami says to log in and
// exits 3, as every command does.
func TestWhoamiLoginNeededOnRetryExits3(t *testing.T) {
	s := newLoginServers(t)
	browser, _ := followBrowser(t)
	env := fakeEnv(nil)
	env.browser = browser
	env.cacheDir = t.TempDir()
	common := []string{"--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce"}
	code, out, errOut := runCmd(t, env, append([]string{"login"}, common...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	s.admin.SetRejectAll(true)   // the kept access token is refused
	s.auth.RevokeRefreshTokens() // and the kept login cannot be refreshed
	code, _, out, errOut = whoamiRows(t, env, common...)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, exitLogin, code, "a login is needed: exit 3")
	assert.Contains(t, errOut, "grpcauth login", "says to log in")
	assert.NotContains(t, errOut, "a new one too", "no new token was got")
}

// grpc-go resolves the proxy of HTTPS_PROXY with its own resolver, whose
// default port is 443 whatever the proxy's scheme: doctor checks that
// port, not net/http's 80.
func TestDoctorProxyWithoutPortIsWhereGRPCGoes(t *testing.T) {
	env := fakeEnv(map[string]string{"HTTPS_PROXY": "http://127.0.0.1"})
	_, hops, all := doctorRun(t, env, "--endpoint", "flyte.example.invalid:443", "--client-id", clientID, "--client-secret-file", secretFile(t, secret))
	require.Contains(t, hops["reachable"], "the proxy http://127.0.0.1", all)
	assert.Contains(t, hops["reachable"], "127.0.0.1:443", "gRPC dials the proxy on 443:\n%s", all)
	assert.NotContains(t, hops["reachable"], "127.0.0.1:80", "doctor checked port 80:\n%s", all)
}

// A flow that needs a login (Pkce, nothing kept): doctor's credentials
// hop says so without a package's prefix, and its fix names a command
// that exists (doctor has no --login).
func TestDoctorLoginNeededMessage(t *testing.T) {
	s := newLoginServers(t)
	env := fakeEnv(nil)
	env.cacheDir = t.TempDir() // nothing kept
	code, hops, all := doctorRun(t, env, "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce")
	t.Logf("report:\n%s", all)
	require.Equal(t, exitLogin, code, all)
	require.True(t, strings.HasPrefix(hops["credentials"], "FAIL"), all)
	assert.NotRegexp(t, `(grpcauth|authenticator|configstore|tokencache): `, hops["credentials"], "a package's prefix in the middle of the FAIL line")
	assert.NotContains(t, all, "doctor --login", "advice names a flag doctor does not have")
	code, _, errOut := runCmd(t, env, "doctor", "--login")
	assert.Equal(t, exitUsage, code, "doctor --login really is a usage error: %s", errOut)
}

// Flyte 2 decodes the bearer JWT's claims into string fields and finds
// nobody when a claim has another type; so does its fake, and whoami says
// the server could not say.
func TestFlyte2FakeRefusesAClaimOfAnotherType(t *testing.T) {
	srv, err := testserver.NewConnectServer(testserver.WithConnectOpen())
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	token := testJWT(t, jwt.MapClaims{"sub": "00u1", "email": 42, "exp": time.Now().Add(time.Hour).Unix()})
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": tokenScript(t, token)})
	code, rows, out, errOut := whoamiRows(t, env, "--endpoint", "http://"+srv.Addr(), "--auth-type", "ExternalCommand", "--authorization-header", "authorization")
	assert.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "could not say, see below", rows["server"])
	assert.Contains(t, errOut, testserver.Flyte2NoIdentity)
}

// FlyteAdmin with token validation off answers UserInfo with an empty
// identity for a token that does not validate, never from claims it did
// not verify; so does its fake.
func TestFlyte1FakeIgnoresAnUnverifiedJWT(t *testing.T) {
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	admin.SetRequireAuth(false)
	token := testJWT(t, jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()})
	_, err = tokens.Validate(t.Context(), token)
	require.Error(t, err, "the token server did not issue this JWT")

	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_COMMAND": tokenScript(t, token)})
	code, rows, out, errOut := whoamiRows(t, env, "--endpoint", admin.Addr(), "--insecure", "--auth-type", "ExternalCommand", "--authorization-header", "authorization")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "FlyteAdmin's flyteidl.service.IdentityService answered, but named nobody (every field empty)", rows["server"])
	assert.NotContains(t, rows, "  subject", "FlyteAdmin does not name the subject of a token it did not verify")
}

// Taking flytectl's login for another client than the configuration's:
// warned, naming both and the fix, since the identity provider will refuse
// the refresh token to this client; nothing said for the same client or an
// opaque token.
func TestWarnOtherClient(t *testing.T) {
	var b strings.Builder
	warnOtherClient(&b, testJWT(t, jwt.MapClaims{"client_id": "flytectl\x1b[2J"}), "my-app")
	assert.Equal(t, `grpcauth login: warning: flytectl's login was issued to client "flytectl [2J", but this configuration logs in as "my-app": once its access token expires, the identity provider will refuse its refresh token to this client; set admin.clientId to "flytectl [2J", or run 'grpcauth login' without --from-flytectl`+"\n", b.String())
	for _, token := range []string{testJWT(t, jwt.MapClaims{"cid": "my-app"}), testJWT(t, jwt.MapClaims{"sub": "x"}), "opaque-token"} {
		b.Reset()
		warnOtherClient(&b, token, "my-app")
		assert.Empty(t, b.String(), token)
	}
}

// FlyteAdmin refuses every unary call whose token lacks the scope "all"
// (its BlanketAuthorization): doctor's call hop and whoami say
// what to add; with the scope, both pass.
func TestScopeAllMissing(t *testing.T) {
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens), testserver.WithBlanketAuthorization(),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{AuthorizationMetadataKey: "authorization"}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	const fix = "FlyteAdmin takes a token only with the scope all: add all to admin.scopes (--scopes), and have the identity provider grant it"

	args := doctorArgs(admin, secretFile(t, secret))
	code, hops, all := doctorRun(t, fakeEnv(nil), args...)
	require.Equal(t, exitFail, code, all)
	assert.Contains(t, hops["call"], "authenticated user doesn't have required scope", all)
	assert.Contains(t, all, "fix: "+fix)
	code, _, all = doctorRun(t, fakeEnv(nil), append(args, "--scopes", "all")...)
	assert.Equal(t, exitOK, code, all)

	whoami := []string{"--endpoint", admin.Addr(), "--insecure", "--client-id", clientID, "--client-secret-file", secretFile(t, secret)}
	code, _, out, errOut := whoamiRows(t, fakeEnv(nil), whoami...)
	require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, fix)
	code, rows, out, errOut := whoamiRows(t, fakeEnv(nil), append(whoami, "--scopes", "all")...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, clientID, rows["  subject"])
}

// A kept browser login with no refresh token, and a Flyte 2 that finds
// nobody in its opaque token: the retry after Unauthenticated would need a
// login, but a login would not help (the server names nobody in any
// opaque token), so whoami says why the server could not say and exits 1,
// not 3.
func TestWhoamiNobodyIsNotALoginNeeded(t *testing.T) {
	auth, err := testserver.NewAuthorizationServer(testserver.WithPublicClient(publicClientID, "http://localhost:53593/callback"))
	require.NoError(t, err)
	t.Cleanup(auth.Close)
	srv, err := testserver.NewConnectServer(testserver.WithConnectOpen(),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{Issuer: auth.Issuer(), AuthorizationEndpoint: auth.AuthorizeURL(), TokenEndpoint: auth.TokenURL()}),
		testserver.WithFlyte2PublicConfig(&flyte2pb.GetPublicClientConfigResponse{ClientId: publicClientID, RedirectUri: "http://localhost:53593/callback", Scopes: []string{"openid"}}))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	endpoint := srv.Addr()
	env := fakeEnv(nil)
	env.cacheDir = t.TempDir()
	files, err := tokencache.NewFile(tokencache.WithDir(env.cacheDir))
	require.NoError(t, err)
	require.NoError(t, files.Save(t.Context(), loginCacheKey(t, endpoint), &oauth2.Token{AccessToken: "opaque-access-token-0123456789", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}))

	code, rows, out, errOut := whoamiRows(t, env, "--endpoint", endpoint, "--insecure", "--auth-type", "Pkce")
	require.Equal(t, exitFail, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, rows["token"], "opaque", "the kept token was used")
	assert.Contains(t, errOut, "grpcauth whoami: Flyte 2's flyteidl2.auth.IdentityService: Unauthenticated: ")
	assert.NotContains(t, errOut, "needs a login")
}
