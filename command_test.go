//go:build unix

package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingCommand writes a script that prints prefix-1, prefix-2, ... on
// successive runs, and returns its argv and a function counting its runs.
func countingCommand(t *testing.T, prefix string) ([]string, func() int) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "cmd.sh")
	body := fmt.Sprintf("#!/bin/sh\nn=$(cat '%[1]s/count' 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > '%[1]s/count'\nprintf '%[2]s-%%s\\n' \"$n\"\n", dir, prefix)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o700))
	return []string{path, "--an-argument"}, func() int {
		b, err := os.ReadFile(filepath.Join(dir, "count"))
		if errors.Is(err, os.ErrNotExist) {
			return 0
		}
		require.NoError(t, err)
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err)
		return n
	}
}

func TestConfigCommandFlow(t *testing.T) {
	o := newOptions(nil)
	_, _, err := Config{AuthType: "ExternalCommand"}.flow(AuthTypeExternalCommand, o)
	assert.ErrorContains(t, err, "needs a command")
	_, _, err = Config{Command: []string{" "}}.flow(AuthTypeExternalCommand, o)
	assert.ErrorContains(t, err, "command is empty")

	argv, runs := countingCommand(t, "access")
	f, _, err := Config{Command: argv}.flow(AuthTypeExternalCommand, o)
	require.NoError(t, err)
	tok, err := f.Token(t.Context(), &configstore.ClientConfig{}, nil)
	require.NoError(t, err)
	assert.Equal(t, "access-1", tok.AccessToken)
	assert.Equal(t, 1, runs())
}

func TestConfigProxyKeeper(t *testing.T) {
	_, err := Config{Endpoint: "admin.example:443", ProxyCommand: []string{""}}.proxyKeeper(nil)
	assert.ErrorContains(t, err, "proxyCommand")

	argv, runs := countingCommand(t, "proxy")
	k, err := Config{Endpoint: "admin.example:443", ProxyCommand: argv}.proxyKeeper(nil)
	require.NoError(t, err)
	defer k.Close()
	key, value, ok := credOK(k.Credential(t.Context()))
	require.True(t, ok)
	assert.Equal(t, "proxy-authorization", key)
	assert.Equal(t, "Bearer proxy-1", value)
	assert.Equal(t, 1, runs())
}

func TestConfigTokenHTTPClient(t *testing.T) {
	p := new(parts)
	hc, err := p.tokenHTTPClient(Config{HTTPProxyURL: "http://proxy:3128", InsecureSkipVerify: true}.netconf())
	require.NoError(t, err)
	tr, ok := hc.Transport.(*http.Transport)
	require.True(t, ok, "no proxyCommand: the plain transport")
	assert.True(t, tr.TLSClientConfig.InsecureSkipVerify)
	assert.NotNil(t, hc.CheckRedirect, "no redirects are followed")

	_, err = p.tokenHTTPClient(Config{HTTPProxyURL: "ftp://user:hunter2@proxy"}.netconf())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
	_, err = p.tokenHTTPClient(Config{CACertFilePath: filepath.Join(t.TempDir(), "missing.pem")}.netconf())
	assert.ErrorContains(t, err, "caCertFilePath")
}

// TestProxyCommandEndToEnd wires a client as New will, from a Config with
// proxyCommand: FlyteAdmin, its token endpoint and its HTTP API all sit
// behind an IAP-like proxy; every gRPC call shape, the AuthMetadataService
// RPCs, the token request and an HTTP API call pass, and an expired proxy
// token is replaced by one run of the command.
func TestProxyCommandEndToEnd(t *testing.T) {
	const clientID, secret = "flyte-client", "s3cr3t-value"
	px, err := testserver.NewProxy()
	require.NoError(t, err)
	t.Cleanup(px.Close)
	for i := 1; i <= 10; i++ {
		px.Allow(fmt.Sprintf("proxy-%d", i))
	}
	tokens, err := testserver.NewTokenServer(testserver.WithClient(clientID, secret))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	tokenFront, err := px.FrontHTTP(tokens.URL(), nil)
	require.NoError(t, err)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokenFront + testserver.TokenPath}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	grpcFront, err := px.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	var sawAuth sync.Map
	api := httptest.NewServer(px.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth.Store(r.Header.Get("Authorization") != "" && r.Header.Get("Proxy-Authorization") == "", true)
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(api.Close)

	argv, runs := countingCommand(t, "proxy")
	cfg := Config{Endpoint: grpcFront, Insecure: true, ClientID: clientID, ClientSecret: secret, ProxyCommand: argv}

	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	conn := c.Conn

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	echo := testserver.NewEchoClient(conn)
	calls := func() {
		t.Helper()
		_, err := echo.Unary(ctx, "hi")
		require.NoError(t, err)
		_, err = echo.ServerStream(ctx, "hi")
		require.NoError(t, err)
		_, err = echo.ClientStream(ctx, []string{"a", "b"})
		require.NoError(t, err)
		_, err = echo.Bidi(ctx, []string{"a", "b"})
		require.NoError(t, err)
	}
	calls()
	assert.Equal(t, 1, runs())
	oauth, public := admin.MetadataCalls()
	assert.Equal(t, [2]int64{1, 1}, [2]int64{oauth, public}, "both metadata RPCs passed the proxy")
	assert.Equal(t, int64(1), tokens.Issued(), "the token request passed the proxy")
	assert.Zero(t, px.Rejected())

	// FlyteAdmin's HTTP API: both headers on one request.
	hc := &http.Client{Transport: c.Authenticator.Transport(interceptor.ProxyTransport(c.Proxy, nil, c.InterceptorOptions...))}
	t.Cleanup(hc.CloseIdleConnections)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/api/v1/projects", nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, both := sawAuth.Load(true)
	assert.True(t, both, "the API saw the OAuth2 token, and the proxy took its own header")

	// The proxy token expires: one run of the command, every call passes.
	px.Expire("proxy-1")
	calls()
	assert.Equal(t, 2, runs())
	assert.Equal(t, int64(1), px.Rejected())
	assert.Equal(t, int64(1), tokens.Issued(), "the OAuth2 token was not touched")
}

// credOK is Credential as the (key, value, ok) of a test that only asks
// whether a credential is at hand.
func credOK(key, value string, err error) (string, string, bool) { return key, value, err == nil }
