package callbackpage_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/callbackpage"
	"github.com/flyteauth/grpcauth/loginui"
)

// A page that fails only for an outcome Load did not try shows grpcauth's
// own page for it, and says why in the log, never the failed output.
func TestWrapFallsBackToOwnPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page.html")
	require.NoError(t, os.WriteFile(path, []byte(`{{if eq .Code "access_denied"}}partial {{index .Detail 5000}}{{else}}custom {{.Title}}{{end}}`), 0o600))
	page, err := callbackpage.Load(t.Context(), path)
	require.NoError(t, err)
	var logs bytes.Buffer
	p := callbackpage.Wrap(&loginui.Terminal{}, page, "https://user:pw@flyte.example/?q=1", slog.New(slog.NewTextHandler(&logs, nil)))

	var ok bytes.Buffer
	p.CallbackPage(&ok, nil)
	assert.Equal(t, "custom Logged in", ok.String())

	var denied bytes.Buffer
	p.CallbackPage(&denied, &authenticator.AuthorizationError{ErrorCode: "access_denied", ErrorDescription: "no"})
	assert.Contains(t, denied.String(), `<h1 id="title">Login failed</h1>`, "grpcauth's own page")
	assert.NotContains(t, denied.String(), "partial")
	assert.Contains(t, logs.String(), "the callback page (pkceConfig.callbackPage) failed")
	assert.Equal(t, 1, strings.Count(logs.String(), "\n"))
}

// The endpoint a page is given carries no password or query.
func TestWrapEndpointRedacted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page.html")
	require.NoError(t, os.WriteFile(path, []byte(`{{.Endpoint}}`), 0o600))
	page, err := callbackpage.Load(t.Context(), path)
	require.NoError(t, err)
	var out bytes.Buffer
	callbackpage.Wrap(&loginui.Terminal{}, page, "https://user:pw@flyte.example/?q=1", nil).CallbackPage(&out, nil)
	assert.NotContains(t, out.String(), "pw")
	assert.NotContains(t, out.String(), "q=1")
	assert.Contains(t, out.String(), "flyte.example")
}
