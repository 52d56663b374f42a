package interop

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

const (
	// chromiumBinEnv names the Chromium (or Chrome) binary; by default
	// "chromium" from PATH, Debian's package, which .ci/run installs.
	chromiumBinEnv = "CHROMIUM_BIN"
	// pageTimeout bounds one page load of the browser, redirects included.
	pageTimeout = 60 * time.Second
)

// chromium is a headless Chromium driven over the DevTools protocol, with a
// profile of its own (cookies survive between the pages of one test).
type chromium struct {
	ctx context.Context // the browser; tabs derive from it
}

// startChromium starts a headless Chromium that reaches only loopback and
// stops it when the test ends. A missing browser fails the test: it is
// part of what .ci/run installs.
func startChromium(t *testing.T) *chromium {
	t.Helper()
	bin := os.Getenv(chromiumBinEnv)
	if bin == "" {
		var err error
		bin, err = exec.LookPath("chromium")
		require.NoError(t, err, "headless Chromium is needed (apt-get install chromium, or set %s)", chromiumBinEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		// Everything that is not loopback goes to a closed port: the
		// tests talk to loopback only (Chromium never proxies loopback).
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		chromedp.WindowSize(800, 600),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Start the browser now, so a broken installation fails here.
	require.NoError(t, chromedp.Do(ctx), "start %s", bin)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
	})
	return &chromium{ctx: ctx}
}

// shownPage is what a tab showed at the end of its navigation.
type shownPage struct {
	URL        string
	Title      string // text of #title, the callback page's heading
	Message    string // text of #message
	HTML       string
	Screenshot []byte // PNG
	Err        error
}

// open loads url in a new tab, following every redirect, waits for the
// callback page's heading and captures the page. The result arrives on the
// returned channel.
func (c *chromium) open(url string) <-chan shownPage {
	ch := make(chan shownPage, 1)
	go func() {
		tab, closeTab := chromedp.NewContext(c.ctx)
		defer closeTab()
		tab, cancel := context.WithTimeout(tab, pageTimeout)
		defer cancel()
		var p shownPage
		p.Err = chromedp.Do(tab,
			chromedp.Navigate(url),
			chromedp.WaitVisible(chromedp.CSS("#title")),
		)
		get := func(a chromedp.Action[string]) string {
			if p.Err != nil {
				return ""
			}
			var v string
			v, p.Err = chromedp.Run(tab, a)
			return v
		}
		p.URL = get(chromedp.Location())
		p.Title = get(chromedp.Text(chromedp.CSS("#title")))
		p.Message = get(chromedp.Text(chromedp.CSS("#message")))
		p.HTML = get(chromedp.OuterHTML(chromedp.CSS("html")))
		if p.Err == nil {
			p.Screenshot, p.Err = chromedp.Run(tab, chromedp.FullScreenshot(100)) // 100: PNG
		}
		ch <- p
	}()
	return ch
}

// requirePNG checks that data is a PNG image of some size and keeps it in
// $PKCE_SCREENSHOT_DIR when set, for a person to look at.
func requirePNG(t *testing.T, data []byte, name string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err, "the screenshot is not a PNG")
	b := img.Bounds()
	require.Positive(t, b.Dx())
	require.Positive(t, b.Dy())
	if dir := os.Getenv("PKCE_SCREENSHOT_DIR"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(dir+"/"+name+".png", data, 0o644))
	}
}
