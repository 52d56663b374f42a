package loginui_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/loginui"
)

// hostile is what a hostile server could put in a URL, a user code or an
// error description: terminal escape sequences (clear the screen, set the
// window title), other control characters, and the bidirectional controls
// that make text read other than it is.
const hostile = "\x1b[2J\x1b]0;title\x07\r\b\x00\x7f\u0085\u202eevil\u202c\u2066\u200f"

// requireClean fails if s holds any character of hostile that a terminal
// would act on, or that reorders text, leaving the rest of the message
// alone (a newline is the Terminal's own).
func requireClean(t *testing.T, s string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\b", "\x00", "\x7f", "\u0085", "\u202e", "\u202c", "\u2066", "\u200f"} {
		require.NotContains(t, s, bad, "%q shown", bad)
	}
}

// browserCalls is a Terminal.Browser that records its calls and answers
// with err.
type browserCalls struct {
	mu   sync.Mutex // guards urls and ctxs
	urls []string
	ctxs []context.Context
	err  error
}

func (b *browserCalls) open(ctx context.Context, url string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.urls = append(b.urls, url)
	b.ctxs = append(b.ctxs, ctx)
	return b.err
}

func (b *browserCalls) calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.urls...)
}

type ctxKey struct{}

func TestBrowsePrintsTheURLAndOpensIt(t *testing.T) {
	var out bytes.Buffer
	var b browserCalls
	term := &loginui.Terminal{Out: &out, Browser: b.open}
	const authURL = "https://idp.example/authorize?client_id=flytectl&state=abc&code_challenge=xyz"
	ctx := context.WithValue(t.Context(), ctxKey{}, "mine")

	term.Browse(ctx, authURL)

	assert.Equal(t, []string{authURL}, b.calls(), "the browser is asked once, for the URL as it is")
	assert.Equal(t, "mine", b.ctxs[0].Value(ctxKey{}), "the browser gets Browse's context, which ends the wait")
	s := out.String()
	assert.Contains(t, s, "\n  "+authURL+"\n", "the URL stands on a line of its own, to be copied")
	assert.Contains(t, s, "Log in with your browser")
	assert.Contains(t, s, "Waiting for the login ...")
	assert.NotContains(t, s, "Could not open a browser")
}

func TestBrowseWhenTheBrowserFails(t *testing.T) {
	var out bytes.Buffer
	b := browserCalls{err: errors.New("xdg-open: executable file not found in $PATH")}
	term := &loginui.Terminal{Out: &out, Browser: b.open}

	term.Browse(t.Context(), "https://idp.example/authorize?state=s")

	assert.Len(t, b.calls(), 1)
	s := out.String()
	assert.Contains(t, s, "https://idp.example/authorize?state=s", "the URL is printed before the browser is tried")
	assert.Contains(t, s, "Could not open a browser (xdg-open: executable file not found in $PATH); open the URL above by hand.")
	assert.Less(t, strings.Index(s, "Waiting for the login"), strings.Index(s, "Could not open a browser"))
}

func TestBrowseWithNoBrowser(t *testing.T) {
	var out bytes.Buffer
	var b browserCalls
	term := &loginui.Terminal{Out: &out, Browser: b.open, NoBrowser: true}

	term.Browse(t.Context(), "https://idp.example/authorize?state=s")

	assert.Empty(t, b.calls(), "NoBrowser only prints")
	assert.Contains(t, out.String(), "https://idp.example/authorize?state=s")
	assert.NotContains(t, out.String(), "Could not open a browser")
}

func TestBrowseCleansWhatTheServerChose(t *testing.T) {
	var out bytes.Buffer
	b := browserCalls{err: errors.New("opener said " + hostile)}
	term := &loginui.Terminal{Out: &out, Browser: b.open}
	authURL := "https://idp.example/authorize" + hostile + "?state=s"

	term.Browse(t.Context(), authURL)

	s := out.String()
	requireClean(t, s)
	assert.Contains(t, s, "https://idp.example/authorize")
	assert.Contains(t, s, "?state=s", "the rest of the URL is kept")
	assert.Contains(t, s, "evil", "printable text is kept")
	assert.Contains(t, s, "Could not open a browser (opener said ")
	assert.Equal(t, []string{authURL}, b.calls(), "the browser gets the URL unchanged: cleaning is for the terminal")
}

func TestBrowseClipsAHugeURL(t *testing.T) {
	var out bytes.Buffer
	term := &loginui.Terminal{Out: &out, NoBrowser: true}
	term.Browse(t.Context(), "https://idp.example/?x="+strings.Repeat("a", 1<<20))
	assert.Less(t, out.Len(), 8<<10, "a server cannot flood the terminal")
	assert.Contains(t, out.String(), "…")
}

func TestDeviceCode(t *testing.T) {
	t.Run("with a complete verification URI", func(t *testing.T) {
		var out bytes.Buffer
		term := &loginui.Terminal{Out: &out}
		term.DeviceCode(t.Context(), &oauth2.DeviceAuthResponse{
			DeviceCode:              "device-code-is-a-credential",
			UserCode:                "WDJB-MJHT",
			VerificationURI:         "https://idp.example/device",
			VerificationURIComplete: "https://idp.example/device?user_code=WDJB-MJHT",
			Expiry:                  time.Now().Add(10*time.Minute + 10*time.Second),
		})
		s := out.String()
		assert.Contains(t, s, "To sign in, open this page in a browser on any device:\n\n    https://idp.example/device?user_code=WDJB-MJHT\n")
		assert.Contains(t, s, "and check that it shows the code:\n\n    WDJB-MJHT\n", "the code stands on a line of its own")
		assert.Contains(t, s, "Waiting for approval; the code expires in 10m0s.")
		assert.NotContains(t, s, "device-code-is-a-credential", "the device code is never shown")
		assert.NotContains(t, s, "█", "no QR code on a writer that is not a terminal")
		assert.NotContains(t, s, "▀")
	})
	t.Run("without one", func(t *testing.T) {
		var out bytes.Buffer
		term := &loginui.Terminal{Out: &out}
		term.DeviceCode(t.Context(), &oauth2.DeviceAuthResponse{
			UserCode:        "WDJB-MJHT",
			VerificationURI: "https://idp.example/device",
		})
		s := out.String()
		assert.Contains(t, s, "\n    https://idp.example/device\n")
		assert.Contains(t, s, "and enter the code:\n\n    WDJB-MJHT\n", "the person types the code")
		assert.Contains(t, s, "Waiting for approval.\n")
		assert.NotContains(t, s, "expires in")
	})
}

func TestDeviceCodeCleansWhatTheServerChose(t *testing.T) {
	for _, qr := range []bool{false, true} {
		t.Run(fmt.Sprintf("QRCode %v", qr), func(t *testing.T) {
			var out bytes.Buffer
			term := &loginui.Terminal{Out: &out, QRCode: qr}
			term.DeviceCode(t.Context(), &oauth2.DeviceAuthResponse{
				UserCode:                "AB" + hostile + "CD",
				VerificationURI:         "https://idp.example/device" + hostile,
				VerificationURIComplete: "https://idp.example/device?user_code=AB" + hostile,
			})
			s := out.String()
			requireClean(t, s)
			assert.Contains(t, s, "https://idp.example/device?user_code=AB")
			assert.Contains(t, s, "\n    AB")
			assert.Contains(t, s, "CD\n")
		})
	}
}

func TestDeviceCodeQRCode(t *testing.T) {
	d := &oauth2.DeviceAuthResponse{
		UserCode:                "WDJB-MJHT",
		VerificationURI:         "https://idp.example/device",
		VerificationURIComplete: "https://idp.example/device?user_code=WDJB-MJHT",
	}
	var with, without bytes.Buffer
	(&loginui.Terminal{Out: &with, QRCode: true}).DeviceCode(t.Context(), d)
	(&loginui.Terminal{Out: &without}).DeviceCode(t.Context(), d)

	assert.Contains(t, with.String(), "Or scan this QR code with a phone:")
	assert.Contains(t, with.String(), "█", "QRCode shows the code on any writer")
	assert.NotContains(t, without.String(), "QR code", "a bytes.Buffer is not a terminal")
	assert.NotContains(t, without.String(), "█")
	assert.Greater(t, strings.Count(with.String(), "\n"), strings.Count(without.String(), "\n")+20, "a QR block of many lines")
	// The rest of the prompt is the same.
	assert.True(t, strings.HasPrefix(with.String(), strings.TrimSuffix(without.String(), "Waiting for approval.\n")))
}

func TestReloginAndLoggedIn(t *testing.T) {
	var out bytes.Buffer
	term := &loginui.Terminal{Out: &out}
	term.Relogin(t.Context())
	term.LoggedIn(t.Context())
	assert.Equal(t, "Your saved login is no longer accepted; log in again.\n\nLogged in.\n", out.String())
}

func TestCallbackPage(t *testing.T) {
	page := func(err error) string {
		var b bytes.Buffer
		(&loginui.Terminal{}).CallbackPage(&b, err)
		return b.String()
	}

	t.Run("logged in", func(t *testing.T) {
		p := page(nil)
		assert.True(t, strings.HasPrefix(p, "<!doctype html>"))
		assert.Contains(t, p, "<title>Logged in</title>")
		assert.Contains(t, p, "You are logged in")
		assert.NotContains(t, p, "failed")
	})
	t.Run("state mismatch", func(t *testing.T) {
		p := page(fmt.Errorf("browser login: %w", authenticator.ErrStateMismatch))
		assert.Contains(t, p, "Login failed")
		assert.Contains(t, p, "state mismatch")
		assert.NotContains(t, p, "You are logged in")
	})
	t.Run("the server's refusal is escaped", func(t *testing.T) {
		p := page(fmt.Errorf("browser login: %w", &authenticator.AuthorizationError{
			ErrorCode:        "<script>alert(1)</script>",
			ErrorDescription: `</p><img src=x onerror="alert(2)">` + hostile,
		}))
		assert.Contains(t, p, "Login failed")
		assert.Contains(t, p, "The authorization server refused the login.")
		assert.Contains(t, p, "&lt;script&gt;alert(1)&lt;/script&gt;", "the code is shown, escaped")
		assert.Contains(t, p, "&lt;/p&gt;&lt;img src=x onerror=", "the description is shown, escaped")
		assert.NotContains(t, p, "<script")
		assert.NotContains(t, p, "<img")
		requireClean(t, p)
	})
	t.Run("a plain refusal", func(t *testing.T) {
		p := page(&authenticator.AuthorizationError{ErrorCode: "access_denied", ErrorDescription: "The user denied the request"})
		assert.Contains(t, p, `<code id="error">access_denied</code>`)
		assert.Contains(t, p, "The user denied the request")
	})
	t.Run("any other failure", func(t *testing.T) {
		p := page(errors.New(`token request to https://idp.example/token failed: HTTP 400: invalid_grant (<b>bad</b> code)`))
		assert.Contains(t, p, "Login failed")
		assert.Contains(t, p, "The login did not succeed.")
		assert.Contains(t, p, "invalid_grant")
		assert.Contains(t, p, "&lt;b&gt;bad&lt;/b&gt;")
		assert.NotContains(t, p, "<b>")
	})
	t.Run("a huge description is clipped", func(t *testing.T) {
		p := page(&authenticator.AuthorizationError{ErrorCode: "x", ErrorDescription: strings.Repeat("d", 1<<20)})
		assert.Less(t, len(p), 4<<10)
	})
}

// exclusiveWriter records each Write as one chunk and fails the test if two
// Writes overlap: it is not safe for concurrent use, like a terminal
// whose lines must not mix.
type exclusiveWriter struct {
	inside  atomic.Int32
	overlap atomic.Bool
	chunks  []string // written only inside Write, which never overlaps
}

func (w *exclusiveWriter) Write(p []byte) (int, error) {
	if w.inside.Add(1) != 1 {
		w.overlap.Store(true)
	}
	defer w.inside.Add(-1)
	// Write slowly, so that a Write that did not wait for this one would
	// overlap it.
	for i := range p {
		_ = p[i]
		if i%64 == 0 {
			runtime.Gosched()
		}
	}
	w.chunks = append(w.chunks, string(p))
	return len(p), nil
}

func TestConcurrentMessagesDoNotInterleave(t *testing.T) {
	w := new(exclusiveWriter)
	b := browserCalls{err: errors.New("no display")}
	term := &loginui.Terminal{Out: w, Browser: b.open}
	d := &oauth2.DeviceAuthResponse{UserCode: "WDJB-MJHT", VerificationURI: "https://idp.example/device"}

	const n = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			term.Browse(t.Context(), fmt.Sprintf("https://idp.example/authorize?n=%d", i))
		})
		wg.Go(func() {
			<-start
			term.DeviceCode(t.Context(), d)
		})
		wg.Go(func() {
			<-start
			term.LoggedIn(t.Context())
		})
		wg.Go(func() {
			<-start
			term.Relogin(t.Context())
		})
	}
	close(start)
	wg.Wait()

	require.False(t, w.overlap.Load(), "two messages were written at once")
	counts := map[string]int{}
	for _, c := range w.chunks {
		switch {
		case strings.HasPrefix(c, "Log in with your browser") && strings.HasSuffix(c, "Waiting for the login ...\n"):
			counts["browse"]++
		case strings.HasPrefix(c, "Could not open a browser (no display)") && strings.HasSuffix(c, "by hand.\n"):
			counts["browser failed"]++
		case strings.HasPrefix(c, "To sign in") && strings.HasSuffix(c, "Waiting for approval.\n"):
			counts["device"]++
		case c == "Logged in.\n":
			counts["logged in"]++
		case c == "Your saved login is no longer accepted; log in again.\n\n":
			counts["relogin"]++
		default:
			t.Errorf("a message that is not whole: %q", c)
		}
	}
	assert.Equal(t, map[string]int{"browse": n, "browser failed": n, "device": n, "logged in": n, "relogin": n}, counts)
	assert.Len(t, b.calls(), n)
}

func TestTerminalIsAPrompter(t *testing.T) {
	var p authenticator.Prompter = &loginui.Terminal{}
	assert.NotNil(t, p)
}

// TestOpenBrowser runs a stand-in for xdg-open, found in PATH, and checks
// that it gets the URL as one argument, with no shell in between.
func TestOpenBrowser(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("the opener is xdg-open only on Linux and the BSDs")
	}
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	opener := "#!/bin/sh\nprintf '%s|%s' \"$#\" \"$1\" > '" + got + ".tmp' && mv '" + got + ".tmp' '" + got + "'\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(opener), 0o700))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	url := "https://idp.example/authorize?a=1&b=$(touch " + filepath.Join(dir, "pwned") + ") *"
	require.NoError(t, loginui.OpenBrowser(t.Context(), url))
	require.Eventually(t, func() bool { _, err := os.Stat(got); return err == nil }, 10*time.Second, 5*time.Millisecond)
	b, err := os.ReadFile(got)
	require.NoError(t, err)
	assert.Equal(t, "1|"+url, string(b), "one argument, verbatim")
	assert.NoFileExists(t, filepath.Join(dir, "pwned"))

	t.Setenv("PATH", t.TempDir())
	err = loginui.OpenBrowser(t.Context(), "https://idp.example/")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "xdg-open")
}

// $BROWSER names the browser: its first entry, with %s standing for the
// URL where it says so, run without a shell.
func TestOpenBrowserHonoursBROWSER(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	script := filepath.Join(dir, "browser.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|%s' \"$1\" \"$2\" > "+got+".tmp && mv "+got+".tmp "+got+"\n"), 0o700))
	for _, tc := range []struct{ browser, want string }{
		{script + " --new-tab %s" + string(os.PathListSeparator) + "/nonexistent/second", "--new-tab|https://idp.example/a?b=c;d"},
		{script, "https://idp.example/a?b=c;d|"},
	} {
		_ = os.Remove(got)
		t.Setenv("BROWSER", tc.browser)
		require.NoError(t, loginui.OpenBrowser(t.Context(), "https://idp.example/a?b=c;d"))
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(got)
			return err == nil && string(b) == tc.want
		}, 10*time.Second, 10*time.Millisecond, "$BROWSER=%q", tc.browser)
	}
}
