package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/tokencache"
)

// remoteBrowser is a browser on another machine: it goes through the
// authorization server's pages but cannot reach this machine's loopback
// callback; the address it ends on is what the person pastes, after two
// wrong pastes.
func remoteBrowser(t *testing.T, paste io.Writer, redirect string) func(context.Context, string) error {
	cb, err := url.Parse(redirect)
	require.NoError(t, err)
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == cb.Host {
				return http.ErrUseLastResponse // unreachable from the browser's machine
			}
			return nil
		},
	}
	t.Cleanup(client.CloseIdleConnections)
	return func(ctx context.Context, u string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		end := resp.Header.Get("Location")
		if !strings.HasPrefix(end, redirect) {
			return fmt.Errorf("the browser did not end on the callback: %q", end)
		}
		_, err = fmt.Fprintf(paste, "hello\n\nhttp://evil.example%s\n%s\n", strings.TrimPrefix(end, "http://"+cb.Host), end)
		return err
	}
}

// A browser login over SSH without port forwarding: the person pastes the
// address the browser ended on, and the login completes with it.
func TestLoginByPastingTheCallbackAddress(t *testing.T) {
	t.Setenv("SSH_CONNECTION", "10.0.0.2 50000 10.0.0.1 22")
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	s := newLoginServers(t)
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pw.Close() })
	env := fakeEnv(nil)
	env.stdin = pr
	dir := filepath.Join(t.TempDir(), "tokens")
	// The browser runs on the person's own machine, by hand: the test
	// plays it once the URL is printed.
	env.browser = nil
	urls := make(chan string, 1)
	go func() {
		u := <-urls
		_ = remoteBrowser(t, pw, s.redirect)(t.Context(), u)
	}()
	out := &urlWatcher{found: urls, prefix: s.auth.AuthorizeURL() + "?"}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"login", "--endpoint", s.admin.Addr(), "--insecure", "--auth-type", "Pkce", "--token-cache-dir", dir}, io.Discard, out, env)
	errOut := out.String()
	require.Equal(t, exitOK, code, "stderr:\n%s", errOut)
	assert.Contains(t, errOut, "This is an SSH session without a display: open the URL on your own machine,")
	assert.Contains(t, errOut, "paste that page's address here")
	assert.Contains(t, errOut, "or log in with a device code instead: authType: DeviceFlow")
	assert.Contains(t, errOut, "that is not the address of the login's end", "the first paste is refused")
	assert.Equal(t, 2, strings.Count(errOut, "paste the address again"), "hello and the other host; the empty line is skipped")
	assert.EqualValues(t, 1, s.auth.CodeGrants())

	cache, err := tokencache.NewFile(tokencache.WithDir(dir))
	require.NoError(t, err)
	kept, err := cache.Load(t.Context(), loginCacheKey(t, s.admin.Addr()))
	require.NoError(t, err)
	require.NotNil(t, kept)
	_, err = s.auth.Validate(t.Context(), kept.AccessToken)
	require.NoError(t, err)
}

// urlWatcher is the terminal's stderr: it keeps what is written and hands
// the first URL that starts with prefix to found.
type urlWatcher struct {
	mu     sync.Mutex
	buf    strings.Builder
	prefix string
	found  chan<- string
	sent   bool
}

func (w *urlWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		text := w.buf.String()
		if i := strings.Index(text, w.prefix); i >= 0 {
			if end := strings.IndexAny(text[i:], " \n"); end > 0 {
				w.found <- text[i : i+end]
				w.sent = true
			}
		}
	}
	return len(p), nil
}

func (w *urlWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
