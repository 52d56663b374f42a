package loginui_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/loginui"
)

// recordingBrowser writes a script that records its arguments, one a line,
// into the file it returns (atomically, by a rename).
func recordingBrowser(t *testing.T) (script, got string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("a shell script stands in for the browser")
	}
	dir := t.TempDir()
	got = filepath.Join(dir, "got")
	script = filepath.Join(dir, "browser.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > '"+got+".tmp' && mv '"+got+".tmp' '"+got+"'\n"), 0o700))
	return script, got
}

// Over SSH without a display, a person who set $BROWSER has said how a URL
// is opened (VS Code's Remote-SSH terminals set it to a helper that opens
// the URL on the person's own machine and forwards the loopback port): it
// is run, not skipped as in a headless session.
func TestBrowseOverSSHHonoursBROWSER(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("sshWithoutDisplay is Linux/BSD only")
	}
	script, got := recordingBrowser(t)
	t.Setenv("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("BROWSER", script)

	var out bytes.Buffer
	term := &loginui.Terminal{Out: &out}
	const url = "https://idp.example/authorize?client_id=c&state=s"
	term.Browse(t.Context(), url)
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(got)
		return err == nil && string(b) == url+"\n"
	}, 5*time.Second, 10*time.Millisecond, "$BROWSER was not run; the terminal said:\n%s", out.String())
}

// $BROWSER's %s stands for the URL wherever it appears in an argument, as
// xdg-open reads it: "chromium --app=%s" opens the URL as an app window.
func TestOpenBrowserReplacesPercentSInsideAnArgument(t *testing.T) {
	script, got := recordingBrowser(t)
	t.Setenv("BROWSER", script+" --app=%s")
	const url = "https://idp.example/authorize?x=1"
	require.NoError(t, loginui.OpenBrowser(t.Context(), url))
	var b []byte
	require.Eventually(t, func() bool {
		var err error
		b, err = os.ReadFile(got)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "--app="+url+"\n", string(b))
}

// A pasted line over 64 KiB (a clipboard that held something else) is
// refused with a word, and the address pasted next is still handed to the
// callback.
func TestPasteAfterAnOverlongLineIsStillTaken(t *testing.T) {
	hit := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hit <- r.URL.RawQuery:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	paste := strings.Repeat("x", 70<<10) + "\n" + srv.URL + "/callback?code=c0de&state=st\n"

	var out bytes.Buffer
	term := &loginui.Terminal{Out: &out, NoBrowser: true, Paste: strings.NewReader(paste)}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		term.Browse(ctx, "https://idp.example/authorize?state=st")
	}()
	select {
	case q := <-hit:
		assert.Equal(t, "code=c0de&state=st", q)
	case <-done:
		t.Fatalf("Browse stopped taking pastes before the address came; the terminal said:\n%s", out.String())
	case <-ctx.Done():
		t.Fatal("the pasted address never reached the callback")
	}
	cancel()
	<-done
}
