package main

// These tests run the commands against the Flyte 2 fake, which models
// Flyte 2's runs/service (connect-go handlers of
// flyteidl2.auth.AuthMetadataService; Flyte 1's service unimplemented),
// with the configuration a flyte-sdk user has: an API key in the
// environment, or a ./.flyte/config.yaml.

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
)

// flyte2APIKey encodes an API key as flyte-sdk's tests build one.
func flyte2APIKey(endpoint, clientID, secret, org string) string {
	return base64.StdEncoding.EncodeToString([]byte(endpoint + ":" + clientID + ":" + secret + ":" + org))
}

// newFlyte2ClientCredentials is a plaintext Flyte 2 fake whose token
// endpoint is a token server that knows clientID.
func newFlyte2ClientCredentials(t *testing.T) (*testserver.ConnectServer, *testserver.TokenServer) {
	t.Helper()
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	srv, err := testserver.NewConnectServer(testserver.WithConnectValidator(tokens),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{Issuer: tokens.URL(), TokenEndpoint: tokens.TokenURL()}),
		testserver.WithFlyte2PublicConfig(&flyte2pb.GetPublicClientConfigResponse{Scopes: []string{"all"}}))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return srv, tokens
}

func TestFlyte2TokenWithAnAPIKey(t *testing.T) {
	srv, tokens := newFlyte2ClientCredentials(t)
	key := flyte2APIKey("http://"+srv.Addr(), clientID, secret, "tenant")
	env := fakeEnv(map[string]string{"FLYTE_API_KEY": key})

	code, out, errOut := runCmd(t, env, "token")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	_, err := tokens.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err, "the printed token is one the token server issued")
	oauth2Calls, publicCalls := srv.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth2Calls, publicCalls}, "Flyte 2's service answered")
	assert.NotContains(t, out+errOut, secret)
	assert.NotContains(t, out+errOut, key)

	code, out, errOut = runCmd(t, env, "config")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Contains(t, out, "server: Flyte 2 (it serves flyteidl2.auth.AuthMetadataService)")
	assert.Contains(t, out, "organisation: tenant")
	assert.Contains(t, out, "env FLYTE_API_KEY")
	assert.Regexp(t, `insecure\s+true\s+the scheme of the endpoint \(env FLYTE_API_KEY\)`, out)
	assert.NotContains(t, out+errOut, secret)
	assert.NotContains(t, out+errOut, key)
	assert.NotContains(t, errOut, "authorization header")

	// Flyte 2 reads the token only from authorization.
	code, _, errOut = runCmd(t, env, "config", "--authorization-header", "flyte-authorization")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Contains(t, errOut, "grpcauth config: warning: the server is Flyte 2, which reads the token only from the authorization header, but authorizationHeader is flyte-authorization: calls will be refused")
}

func TestFlyte2MalformedAPIKey(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("flyte.example:" + secret))
	code, out, errOut := runCmd(t, fakeEnv(map[string]string{"FLYTE_API_KEY": key}), "token")
	assert.Equal(t, exitFail, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "env FLYTE_API_KEY: malformed API key: want base64 of endpoint:client_id:client_secret:org, got 2 of those 4 fields")
	assert.NotContains(t, errOut, secret)
	assert.NotContains(t, errOut, key)
}

// The config `flyte create config` writes, ./.flyte/config.yaml, found
// from a subdirectory of the project through the git root.
func TestFlyte2ConfigInDotFlyte(t *testing.T) {
	srv, tokens := newFlyte2ClientCredentials(t)
	repo := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(repo, ".git"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(repo, ".flyte"), 0o755))
	cfgFile := filepath.Join(repo, ".flyte", "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(
		"admin:\n  endpoint: http://%s\n  authType: ClientSecret\n  clientId: %s\ntask:\n  org: tenant\n  project: p\n  domain: development\n", srv.Addr(), clientID)), 0o600))
	sub := filepath.Join(repo, "workflows", "ml")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	env := fakeEnv(map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret})
	env.dir = sub

	code, out, errOut := runCmd(t, env, "token")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	_, err := tokens.Validate(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)

	code, out, errOut = runCmd(t, env, "config")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Contains(t, out, "config file: "+cfgFile)
	assert.Contains(t, out, "server: Flyte 2")
}

func TestConfigSaysFlyte1(t *testing.T) {
	_, admin, _ := newPlainServers(t, nil)
	code, out, errOut := runCmd(t, fakeEnv(nil), "config", "--endpoint", admin.Addr(), "--insecure")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Contains(t, out, "server: Flyte 1 (it serves flyteidl.service.AuthMetadataService)")

	code, out, _ = runCmd(t, fakeEnv(nil), "config", "--endpoint", "127.0.0.1:1", "--insecure", "--timeout", "2s")
	require.Equal(t, exitOK, code, "a server that cannot be reached does not fail the command")
	assert.Contains(t, out, "server: unknown: ")
}

// Browser login and logout against Flyte 2, the client id, redirect URI
// and scopes from its public client config.
func TestFlyte2LoginLogout(t *testing.T) {
	s := newLoginServers(t)
	srv, err := testserver.NewConnectServer(testserver.WithConnectValidator(s.auth),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{
			AuthorizationEndpoint: s.auth.AuthorizeURL(), TokenEndpoint: s.auth.TokenURL(),
		}),
		testserver.WithFlyte2PublicConfig(&flyte2pb.GetPublicClientConfigResponse{
			ClientId: publicClientID, RedirectUri: s.redirect, Scopes: []string{"openid", "offline"},
		}))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	browser, opened := followBrowser(t)
	env := fakeEnv(map[string]string{"FLYTE_ADMIN_ENDPOINT": "http://" + srv.Addr(), "FLYTE_ADMIN_AUTHTYPE": "Pkce"})
	env.browser = browser
	dir := filepath.Join(t.TempDir(), "tokens")

	code, out, errOut := runCmd(t, env, "login", "--token-cache-dir", dir)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "as client "+publicClientID)
	assert.Equal(t, 1, opened())
	assert.EqualValues(t, 1, s.auth.CodeGrants())
	assert.Zero(t, s.admin.EchoCalls()+func() int64 { a, b := s.admin.MetadataCalls(); return a + b }(), "Flyte 1's fake was never asked")

	code, out, errOut = runCmd(t, env, "logout", "--token-cache-dir", dir)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "Logged out")
	assert.Contains(t, out, "Not revoked: the deployment's metadata names no revocation endpoint. The token stays valid at the server until it expires.",
		"a server that names neither an issuer nor a revocation endpoint: said so")
}

func TestFlyte2DeviceLogin(t *testing.T) {
	dev, err := testserver.NewDeviceServer(testserver.WithDeviceClient(publicClientID), testserver.WithDeviceInterval(0))
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	srv, err := testserver.NewConnectServer(testserver.WithConnectValidator(dev),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{
			TokenEndpoint: dev.TokenURL(), DeviceAuthorizationEndpoint: dev.DeviceAuthorizationURL(),
		}),
		testserver.WithFlyte2PublicConfig(&flyte2pb.GetPublicClientConfigResponse{ClientId: publicClientID}))
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	approved := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if codes := dev.UserCodes(); len(codes) > 0 {
				approved <- dev.Approve(codes[0])
				return
			}
			time.Sleep(5 * time.Millisecond) // polling for the code, bounded by the deadline
		}
		approved <- fmt.Errorf("no user code was issued")
	}()
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("admin:\n  endpoint: http://"+srv.Addr()+"\n  authType: DeviceFlow\n  deviceFlowConfig:\n    pollInterval: 20ms\n"), 0o600))
	code, out, errOut := runCmd(t, fakeEnv(nil), "login", "--config", cfgFile, "--token-cache-dir", t.TempDir())
	require.NoError(t, <-approved)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "as client "+publicClientID)
	assert.EqualValues(t, 1, dev.Issued())
}

func TestTokenWithPassthroughSaysThereIsNone(t *testing.T) {
	code, out, errOut := runCmd(t, fakeEnv(map[string]string{"FLYTE_ADMIN_AUTHTYPE": "Passthrough"}), "token", "--endpoint", "127.0.0.1:1", "--insecure")
	assert.Equal(t, exitFail, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "authType Passthrough sends the headers each caller sets: there is no token of grpcauth's to print")
}
