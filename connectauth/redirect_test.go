package connectauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// connectauth.New's HTTP client never follows a redirect to another scheme
// or host: the token would go along (net/http keeps it on the same host
// name, even from https to http).
func TestNewRefusesRedirectsToAnotherOrigin(t *testing.T) {
	var leaked atomic.Value
	other := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusNoContent)
	}))
	front := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))

	c := newClient(t, grpcauth.Config{Endpoint: strings.TrimPrefix(front.URL, "http://"), Insecure: true,
		AuthType: grpcauth.AuthTypeExternalCommand, Command: []string{"echo", "the-token"}, AuthorizationHeader: "authorization"})
	echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, c.Options...)
	_, err := echo.Echo(ctx(t), req("x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing a redirect")
	assert.Nil(t, leaked.Load(), "the other origin was reached")
}

// h2cServer serves h over plain HTTP/2 (and HTTP/1.1), as a Flyte 2
// development cluster does.
func h2cServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}
