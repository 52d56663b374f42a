//go:build unix

package grpcauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cmd.sh")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	return p
}

func TestNewWithProxyCommandAndExternalCommand(t *testing.T) {
	px, err := testserver.NewProxy()
	require.NoError(t, err)
	t.Cleanup(px.Close)
	px.Allow("proxy-a")
	tokens, err := testserver.NewTokenServer(testserver.WithClient("id", "secret"))
	require.NoError(t, err)
	t.Cleanup(tokens.Close)
	tokenFront, err := px.FrontHTTP(tokens.URL(), nil)
	require.NoError(t, err)
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokenFront + testserver.TokenPath}))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	front, err := px.FrontGRPC(admin.Addr())
	require.NoError(t, err)
	proxyCmd := []string{writeScript(t, "printf proxy-a")}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// ClientSecret behind the proxy.
	c, err := grpcauth.New(grpcauth.Config{Endpoint: front, Insecure: true, ClientID: "id", ClientSecret: "secret", ProxyCommand: proxyCmd})
	require.NoError(t, err)
	_, err = testserver.NewEchoClient(c.Conn).Bidi(ctx, []string{"a"})
	require.NoError(t, err)
	require.NotNil(t, c.Proxy)
	require.NoError(t, c.Close())

	// ExternalCommand behind the proxy: the access token comes from a
	// command too, which prints a token the token server issued.
	cc := clientcredentials.Config{ClientID: "id", ClientSecret: "secret", TokenURL: tokens.TokenURL()}
	issued, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, tokens.HTTPClient()))
	require.NoError(t, err)
	tokFile := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(tokFile, []byte(issued.AccessToken+"\n"), 0o600))
	c, err = grpcauth.New(grpcauth.Config{Endpoint: front, Insecure: true, AuthType: "ExternalCommand", Command: []string{"cat", tokFile}, ProxyCommand: proxyCmd})
	require.NoError(t, err)
	defer c.Close()
	echo := testserver.NewEchoClient(c.Conn)
	_, err = echo.Unary(ctx, "hi")
	require.NoError(t, err)
	_, err = echo.ServerStream(ctx, "hi")
	require.NoError(t, err)

	// The proxy refuses the proxy token for good (the command prints the
	// same one again): the proxy interceptor retries once, and the OAuth2
	// interceptor does not refresh the access token for the proxy's refusal.
	px.Expire("proxy-a")
	requests := tokens.Requests()
	_, err = echo.Unary(ctx, "hi")
	require.Error(t, err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.True(t, isProxyFailure(err), "%v", err)
	assert.Equal(t, requests, tokens.Requests())
}

// isProxyFailure reports whether err is the proxy's doing: its refusal, or
// no proxy credential.
func isProxyFailure(err error) bool {
	var pe *interceptor.ProxyCredentialError
	return interceptor.IsProxyRejection(err) || errors.As(err, &pe)
}
