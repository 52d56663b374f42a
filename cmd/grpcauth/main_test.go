package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func TestMain(m *testing.M) {
	if os.Getenv(asCLIEnv) != "" {
		// grpcauth itself, run as a command by a test.
		main()
	}
	// The OS keyring's D-Bus session connection (TestKeyringLoginTokenLogout
	// under make keyring-test) is the process's own, kept open by godbus.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/godbus/dbus/v5.newConn.func1"),
		goleak.IgnoreAnyFunction("github.com/godbus/dbus/v5.(*Conn).inWorker"))
}

// fakeEnv is an environment without a home directory, so that no test
// reads the real ~/.flyte/config.yaml.
// fakeEnv is an environment of vars alone, with home and working
// directories that hold no config file.
func fakeEnv(vars map[string]string) environment {
	return environment{lookup: func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}, home: "/nonexistent/home", dir: "/nonexistent/dir"}
}

func runCmd(t *testing.T, env environment, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if env.cacheDir == "" {
		env.cacheDir = t.TempDir() // never the machine's token cache
	}
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut, env)
	return code, out.String(), errOut.String()
}

func TestDemo(t *testing.T) {
	code, out, errOut := runCmd(t, fakeEnv(nil), "demo", "-duration", "1.5s", "-concurrency", "4")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "revoked every token")
	assert.Contains(t, out, "result: OK, every call succeeded")
	assert.Contains(t, out, "0 failed (unary")
	assert.Contains(t, out, "p50")
	assert.Empty(t, errOut)
}

func TestDemoIsTheDefault(t *testing.T) {
	code, out, errOut := runCmd(t, fakeEnv(nil), "-duration=300ms", "-concurrency=2")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "result: OK")
}

func TestDemoInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"demo", "-duration", "10s"}, &out, &errOut, fakeEnv(nil))
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out.String(), "result: INTERRUPTED")
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stdout for the top-level help, else in stderr
	}{
		{args: []string{"--help"}, code: exitOK, want: "grpcauth token [flags]"},
		{args: []string{"demo", "--help"}, code: exitOK, want: "-token-lifetime"},
		{args: []string{"token", "--help"}, code: exitOK, want: "-client-secret-env"},
		{args: []string{"config", "-h"}, code: exitOK, want: "-endpoint"},
		{args: []string{"bogus"}, code: exitUsage, want: `unknown command "bogus"`},
		{args: []string{"demo", "-concurrency", "0"}, code: exitUsage, want: "-concurrency must be at least 1"},
		{args: []string{"demo", "-token-lifetime", "500ms"}, code: exitUsage, want: "at least 1s"},
		{args: []string{"token", "--no-such-flag"}, code: exitUsage, want: "flag provided but not defined"},
		{args: []string{"config", "extra"}, code: exitUsage, want: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, fakeEnv(nil), tt.args...)
			assert.Equal(t, tt.code, code)
			assert.Contains(t, out+errOut, tt.want)
		})
	}
}

// servers are a TLS token server and admin server on loopback.
type servers struct {
	caFile string
	tokens *testserver.TokenServer
	admin  *testserver.AdminServer
}

const (
	clientID = "cli-client"
	secret   = "cli-secret-0123456789abcdef"
)

func newServers(t *testing.T) *servers {
	t.Helper()
	ca, err := testserver.NewCA()
	require.NoError(t, err)
	s := &servers{}
	s.caFile, err = ca.WriteCertFile(t.TempDir())
	require.NoError(t, err)
	s.tokens, err = testserver.NewTokenServer(testserver.WithTokenTLS(ca), testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(s.tokens.Close)
	s.admin, err = testserver.NewAdminServer(testserver.WithTCP(), testserver.WithAdminTLS(ca), testserver.WithValidator(s.tokens), testserver.WithHeaderKey("flyte-authorization"),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: s.tokens.TokenURL()}),
		testserver.WithPublicClientConfig(&authmetapb.PublicClientAuthConfigResponse{AuthorizationMetadataKey: "flyte-authorization"}))
	require.NoError(t, err)
	t.Cleanup(s.admin.Close)
	return s
}

func secretFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "client_secret")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestToken(t *testing.T) {
	s := newServers(t)
	code, out, errOut := runCmd(t, fakeEnv(nil), "token",
		"--endpoint", "dns:///"+s.admin.Addr(), "--ca-cert", s.caFile,
		"--client-id", clientID, "--client-secret-file", secretFile(t, secret+"\n"))
	require.Equal(t, exitOK, code, "stderr: %s", errOut)

	token := strings.TrimSuffix(out, "\n")
	require.NotEmpty(t, token)
	assert.NotContains(t, token, " ")
	_, err := s.tokens.Validate(t.Context(), token)
	require.NoError(t, err, "the printed token is one the token server issued")
	assert.Empty(t, errOut)
	oauth2Calls, _ := s.admin.MetadataCalls()
	assert.Equal(t, int64(1), oauth2Calls, "the token endpoint came from AuthMetadataService")
}

func TestTokenHeaderFromConfigFileAndEnv(t *testing.T) {
	s := newServers(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte(
		"admin:\n  endpoint: dns:///"+s.admin.Addr()+"\n  caCertFilePath: "+s.caFile+"\n  clientId: "+clientID+"\n  authType: ClientSecret\n"), 0o600))
	env := fakeEnv(map[string]string{
		"FLYTECTL_CONFIG":                 config,
		"FLYTE_CREDENTIALS_CLIENT_SECRET": secret,
	})

	code, out, errOut := runCmd(t, env, "token", "--header")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	key, value, ok := strings.Cut(strings.TrimSuffix(out, "\n"), ": ")
	require.True(t, ok, out)
	assert.Equal(t, "flyte-authorization", key, "the header key FlyteAdmin advertises")
	token, ok := strings.CutPrefix(value, "Bearer ")
	require.True(t, ok, value)
	_, err := s.tokens.Validate(t.Context(), token)
	require.NoError(t, err)
}

func TestTokenBadSecret(t *testing.T) {
	s := newServers(t)
	const wrong = "wrong-secret-must-not-be-printed"
	code, out, errOut := runCmd(t, fakeEnv(map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": wrong}), "token",
		"--endpoint", s.admin.Addr(), "--ca-cert", s.caFile, "--client-id", clientID)
	assert.Equal(t, exitFail, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "invalid_client")
	assert.Contains(t, errOut, "OAuth error: invalid_client")
	assert.Contains(t, errOut, "env FLYTE_CREDENTIALS_CLIENT_SECRET", "the hint names where the secret came from")
	assert.NotContains(t, out+errOut, wrong)
	assert.NotContains(t, out+errOut, secret)
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no endpoint", args: []string{"--client-id", "x"}, want: "endpoint is empty"},
		{name: "unknown auth type", args: []string{"--endpoint", "localhost:1", "--client-id", "x", "--auth-type", "kerberos"}, want: `unknown authType "kerberos"`},
		{name: "missing secret file", args: []string{"--endpoint", "localhost:1", "--client-id", "x", "--client-secret-file", "/no/such/secret"}, want: "/no/such/secret"},
		{name: "missing config file", args: []string{"--config", "/no/such/config.yaml"}, want: "/no/such/config.yaml: cannot read the config file"},
		{name: "bad boolean env", args: nil, want: `env FLYTE_PLATFORM_INSECURE: insecure: want a boolean, got "maybe"`},
		{name: "unreachable admin", args: []string{"--endpoint", "127.0.0.1:1", "--insecure", "--client-id", "x", "--timeout", "2s"}, want: "could not ask FlyteAdmin at 127.0.0.1:1 (plaintext, insecure) for its auth settings: Unavailable: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": "s"}
			if tt.name == "bad boolean env" {
				vars["FLYTE_PLATFORM_INSECURE"] = "maybe"
			}
			code, out, errOut := runCmd(t, fakeEnv(vars), append([]string{"token"}, tt.args...)...)
			assert.Equal(t, exitFail, code)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tt.want)
		})
	}
}

func TestConfigCommand(t *testing.T) {
	const envSecret = "env-secret-must-not-be-printed"
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte("admin:\n  endpoint: dns:///file.example.com:443\n  clientId: file-client\n  scopes: [all]\nlogger:\n  level: 5\n"), 0o600))
	env := fakeEnv(map[string]string{
		"FLYTECTL_CONFIG":                 config,
		"FLYTE_CREDENTIALS_CLIENT_SECRET": envSecret,
		"FLYTE_CREDENTIALS_AUDIENCE":      "env-audience",
	})

	code, out, errOut := runCmd(t, env, "config", "--offline", "--endpoint", "flag.example.com:443", "--insecure")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.NotContains(t, out, envSecret)

	lines := map[string][]string{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 3 {
			lines[f[0]] = f[1:]
		}
	}
	assert.Equal(t, []string{"flag.example.com:443", "flag", "--endpoint"}, lines["endpoint"])
	assert.Equal(t, []string{"true", "flag", "--insecure"}, lines["insecure"])
	assert.Equal(t, []string{"file-client", config}, lines["clientId"])
	assert.Equal(t, []string{"all", config}, lines["scopes"])
	assert.Equal(t, []string{"env-audience", "env", "FLYTE_CREDENTIALS_AUDIENCE"}, lines["audience"])
	assert.Equal(t, []string{"[REDACTED]", "env", "FLYTE_CREDENTIALS_CLIENT_SECRET"}, lines["clientSecret"])
	assert.Equal(t, []string{"-", "default"}, lines["tokenUrl"])
	assert.Contains(t, out, "config file: "+config)
	assert.Contains(t, out, "client secret read from: Config.ClientSecret (from env FLYTE_CREDENTIALS_CLIENT_SECRET)")
}

func TestConfigCommandSecretFlagsWin(t *testing.T) {
	env := fakeEnv(map[string]string{
		"FLYTE_CREDENTIALS_CLIENT_SECRET":         "from-env",
		"FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR": "SOME_VAR",
	})
	code, out, errOut := runCmd(t, env, "config", "--client-id", "c", "--client-secret-file", "/run/secret")
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.Contains(t, out, "client secret read from: file /run/secret (clientSecretLocation, from flag --client-secret-file)")

	code, out, _ = runCmd(t, env, "config", "--client-id", "c", "--client-secret-env", "OTHER_VAR")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "client secret read from: environment variable OTHER_VAR (clientSecretEnvVar, from flag --client-secret-env)")
}

// A flow that reads no client secret says so, rather than where the
// secret it ignores would be read from; and a secret flag's clearing of
// the other sources is no warning.
func TestConfigCommandSecretNotUsed(t *testing.T) {
	for flow, want := range map[string]string{
		"Pkce":            "client secret: not used by Pkce",
		"DeviceFlow":      "client secret: not used by DeviceFlow",
		"ExternalCommand": "client secret: not used by ExternalCommand",
		"":                "client secret: not used by the default browser login (Pkce)",
	} {
		args := []string{"config", "--offline", "--client-secret-file", "/etc/secrets/client_secret"}
		if flow != "" {
			args = append(args, "--auth-type", flow)
		}
		code, out, errOut := runCmd(t, fakeEnv(nil), args...)
		require.Equal(t, exitOK, code, "stderr: %s", errOut)
		assert.Contains(t, out, want, flow)
		assert.NotContains(t, out, "client secret read from", flow)
		assert.Contains(t, errOut, "warning: clientSecretLocation is set (flag --client-secret-file) but", flow)
		assert.NotContains(t, errOut, "clientSecretEnvVar", flow)
		assert.NotContains(t, errOut, "warning: clientSecret is set", flow)
	}
}

func TestConfigCommandBadFile(t *testing.T) {
	config := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte("admin:\n  insecure: maybe\n"), 0o600))
	code, out, errOut := runCmd(t, fakeEnv(nil), "config", "--config", config)
	assert.Equal(t, exitFail, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, config+`: admin.insecure: want a boolean, got "maybe" (line 2)`)
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	assert.Equal(t, time.Duration(50), percentile(d, 50))
	assert.Equal(t, time.Duration(99), percentile(d, 99))
	assert.Equal(t, time.Duration(1), percentile(d[:1], 99))
	assert.Zero(t, percentile(nil, 50))
}

func TestConfigCommandWarnings(t *testing.T) {
	config := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte(`admin:
  endpoint: dns:///flyte.example.com:443
  authType: Pkce
  clientID: typo
  clientSecretLocation: /etc/secret
  httpProxyURL: http://alice:password@proxy:3128/?token=abc
  pkceConfig:
    timeout: 1m
`), 0o600))
	code, out, errOut := runCmd(t, fakeEnv(nil), "config", "--offline", "--config", config)
	require.Equal(t, exitOK, code, "warnings do not fail the command; stderr: %s", errOut)

	assert.Contains(t, errOut, "grpcauth config: warning: "+config+":4: unknown key admin.clientID, ignored; did you mean clientId?")
	assert.Contains(t, errOut, "grpcauth config: warning: clientSecretLocation is set ("+config+") but authType Pkce does not read it")
	assert.Contains(t, out, "authentication: Pkce")
	assert.Contains(t, out, "http://[REDACTED]@proxy:3128/?[REDACTED]")
	assert.Contains(t, out, "pkceConfig.timeout")
	assert.NotContains(t, out+errOut, "password")
	assert.NotContains(t, out+errOut, "abc")

	code, out, errOut = runCmd(t, fakeEnv(nil), "config", "--auth-type", "magic")
	require.Equal(t, exitOK, code)
	assert.Contains(t, errOut, `warning: unknown authType "magic"`)
	assert.Contains(t, out, "authentication: unknown authType")

	code, out, _ = runCmd(t, fakeEnv(nil), "config")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "authentication: Pkce by default (no authType, no clientId)")
}

// Issue 16: a failure to reach FlyteAdmin names it, and says how its
// certificate was checked.
func TestTokenErrorsNameTheEndpoint(t *testing.T) {
	s := newServers(t)
	otherCA, err := testserver.NewCA()
	require.NoError(t, err)
	otherCAFile, err := otherCA.WriteCertFile(t.TempDir())
	require.NoError(t, err)
	vars := map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret}

	t.Run("system roots", func(t *testing.T) {
		code, _, errOut := runCmd(t, fakeEnv(vars), "token", "--endpoint", s.admin.Addr(), "--client-id", clientID, "--timeout", "5s")
		assert.Equal(t, exitFail, code)
		assert.Contains(t, errOut, "FlyteAdmin at "+s.admin.Addr()+" (TLS, trusting the system's roots only (no caCertFilePath))")
		assert.Contains(t, errOut, "hint: the server's certificate is not trusted: name its CA with --ca-cert")
	})
	t.Run("a CA file that did not sign it", func(t *testing.T) {
		code, _, errOut := runCmd(t, fakeEnv(vars), "token", "--endpoint", s.admin.Addr(), "--ca-cert", otherCAFile, "--client-id", clientID, "--timeout", "5s")
		assert.Equal(t, exitFail, code)
		assert.Contains(t, errOut, "FlyteAdmin at "+s.admin.Addr()+" (TLS, trusting the system's roots and the CA file "+otherCAFile+")")
		assert.Contains(t, errOut, "hint: the server's certificate is not trusted: check that "+otherCAFile)
	})
	t.Run("connection refused", func(t *testing.T) {
		code, _, errOut := runCmd(t, fakeEnv(vars), "token", "--endpoint", "dns:///127.0.0.1:1", "--insecure", "--client-id", clientID, "--timeout", "5s")
		assert.Equal(t, exitFail, code)
		assert.Contains(t, errOut, "FlyteAdmin at dns:///127.0.0.1:1 (plaintext, insecure)")
	})
}

// newPlainServers is a plaintext FlyteAdmin fake that requires a token, its
// token server (client clientID, secret secret) and the token URL it
// advertises; front, when set, stands in front of the token server.
func newPlainServers(t *testing.T, front func(http.Handler) http.Handler) (*testserver.TokenServer, *testserver.AdminServer, string) {
	t.Helper()
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	tokenURL := tokens.TokenURL()
	if front != nil {
		target, err := url.Parse(tokens.URL())
		require.NoError(t, err)
		srv := &http.Server{Handler: front(httputil.NewSingleHostReverseProxy(target)), ReadHeaderTimeout: 5 * time.Second}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
		tokenURL = "http://" + l.Addr().String() + testserver.TokenPath
	}
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokenURL}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	admin.SetRequireAuth(true)
	return tokens, admin, tokenURL
}
