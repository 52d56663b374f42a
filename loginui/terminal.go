package loginui

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/skip2/go-qrcode"
	"golang.org/x/oauth2"
	"golang.org/x/term"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/callbackpage"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/transportsec"
)

// Terminal shows interactive logins on a terminal: the URL of a browser
// login (opened in a browser where it can), the URL and code of a device
// login (with a QR code when Out is a terminal), and a short page in the
// browser at the end of a browser login. Its fields are set before use; it
// is safe for concurrent use.
type Terminal struct {
	// Out receives the messages; nil means os.Stderr.
	Out io.Writer
	// Browser opens a URL; nil means OpenBrowser. It must return when its
	// ctx ends. An error is shown, not fatal: the person can still open
	// the printed URL (none once the login ended).
	Browser func(ctx context.Context, url string) error
	// NoBrowser only prints the URL of a browser login, such as over SSH.
	NoBrowser bool
	// QRCode shows the QR code of a device login's URL even when Out is
	// not a terminal.
	QRCode bool
	// Paste, when set (a terminal's standard input), lets the person
	// finish a browser login whose browser cannot reach this machine's
	// loopback callback (SSH without port forwarding, a container): they
	// paste the address the browser ended on, and the Terminal hands it to
	// the callback itself. Only a loopback http address that carries the
	// login's answer (code or error) is taken. One goroutine reads Paste
	// for the Terminal's life, a line at a time.
	Paste io.Reader

	mu     sync.Mutex // serializes writes to Out
	lines  chan string
	reader sync.Once
}

var _ authenticator.Prompter = (*Terminal)(nil)

func (t *Terminal) out() io.Writer { return cmp.Or[io.Writer](t.Out, os.Stderr) }

// say writes s to Out; a message that cannot be written is no reason to
// fail a login.
func (t *Terminal) say(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = io.WriteString(t.out(), s)
}

// Browse prints authURL and opens it in a browser unless NoBrowser, or in
// an SSH session without a display, where it says what to do instead.
// With Paste, it then takes a pasted callback address until ctx ends.
func (t *Terminal) Browse(ctx context.Context, authURL string) {
	headless := t.Browser == nil && os.Getenv("BROWSER") == "" && sshWithoutDisplay()
	msg := fmt.Sprintf("Log in with your browser at this URL (it opens by itself where it can):\n\n  %s\n\n", clean(authURL, 4096))
	if headless {
		msg += "This is an SSH session without a display: open the URL on your own machine"
		if t.Paste == nil {
			msg += " (its browser must reach this machine's loopback address: ssh -L)"
		}
		msg += ", or log in with a device code instead: authType: DeviceFlow, where the identity provider offers it.\n"
	}
	if t.Paste != nil {
		msg += "If the browser cannot reach this machine (SSH, a container), it ends on a page that does not load: paste that page's address here and press Enter.\n"
	}
	t.say(msg + "Waiting for the login ...\n")
	if !headless && !t.NoBrowser {
		open := t.Browser
		if open == nil {
			open = OpenBrowser
		}
		if err := open(ctx, authURL); err != nil && ctx.Err() == nil {
			t.say(fmt.Sprintf("Could not open a browser (%s); open the URL above by hand.\n", clean(err.Error(), 200)))
		}
	}
	if t.Paste != nil {
		t.takePasted(ctx)
	}
}

// takePasted hands pasted callback addresses to the login's callback until
// one is taken or ctx ends.
func (t *Terminal) takePasted(ctx context.Context) {
	t.reader.Do(func() {
		t.lines = make(chan string)
		go func() {
			defer close(t.lines)
			r := bufio.NewReader(t.Paste)
			for {
				line, err := readLine(r, maxPasted)
				if line != "" || err == nil {
					t.lines <- line
				}
				if err != nil {
					return
				}
			}
		}()
	})
	for {
		select {
		case <-ctx.Done():
			return
		case line, ok := <-t.lines:
			if !ok {
				return
			}
			line = strings.TrimSpace(line)
			switch line {
			case "":
				continue
			case tooLong:
				t.say(fmt.Sprintf("That line is longer than %d KiB, not the address of the login's end; paste the address again.\n", maxPasted>>10))
				continue
			}
			if err := deliver(ctx, line); err != nil {
				if ctx.Err() != nil {
					return
				}
				t.say(fmt.Sprintf("%s; paste the address again.\n", clean(err.Error(), 300)))
				continue
			}
			return
		}
	}
}

// maxPasted bounds a pasted line: a callback address is a few hundred
// bytes.
const maxPasted = 64 << 10

// tooLong is the text that stands for a pasted line over maxPasted.
const tooLong = "\x00too long"

// readLine reads one line of r, without its end; a line over max reads as
// tooLong, its rest discarded, and the next line is read as usual.
func readLine(r *bufio.Reader, max int) (string, error) {
	var line []byte
	over := false
	for {
		part, isPrefix, err := r.ReadLine()
		if !over {
			line = append(line, part...)
			over = len(line) > max
		}
		if err != nil || !isPrefix {
			if over {
				return tooLong, err
			}
			return string(line), err
		}
	}
}

// deliver sends a pasted callback address to the login's callback, which
// listens on this machine's loopback.
func deliver(ctx context.Context, pasted string) error {
	u, err := url.Parse(pasted)
	if err != nil || u.Scheme != "http" || !transportsec.LoopbackHost(u.Hostname()) || u.User != nil {
		return errors.New("that is not the address of the login's end (http://localhost:PORT/... or http://127.0.0.1:PORT/...)")
	}
	if q := u.Query(); q.Get("code") == "" && q.Get("error") == "" {
		return errors.New("that address carries no answer of the login (no code= or error=): copy the whole address from the browser")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil},
		// The callback answers with its page; a redirect would lead off
		// the loopback.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("the login's callback did not answer (%s)", err.Error())
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the login's callback refused that address (HTTP %d)", resp.StatusCode)
	}
	return nil
}

// sshWithoutDisplay reports whether this is an SSH session of a Unix
// desktop-less host: no browser to open.
func sshWithoutDisplay() bool {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		return false
	}
	return os.Getenv("SSH_CONNECTION") != "" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == ""
}

// DeviceCode shows where to go and which code to check or enter. The code
// stands on a line of its own, as the server wrote it (servers differ in
// whether they accept it with other separators).
func (t *Terminal) DeviceCode(_ context.Context, d *oauth2.DeviceAuthResponse) {
	code := clean(d.UserCode, 64)
	var b strings.Builder
	if u := clean(d.VerificationURIComplete, 2048); u != "" {
		fmt.Fprintf(&b, "To sign in, open this page in a browser on any device:\n\n    %s\n\n", u)
		fmt.Fprintf(&b, "and check that it shows the code:\n\n    %s\n\n", code)
	} else {
		fmt.Fprintf(&b, "To sign in, open this page in a browser on any device:\n\n    %s\n\n", clean(d.VerificationURI, 2048))
		fmt.Fprintf(&b, "and enter the code:\n\n    %s\n\n", code)
	}
	if t.QRCode || isTerminal(t.out()) {
		target := cmp.Or(d.VerificationURIComplete, d.VerificationURI)
		if q, err := qrcode.New(target, qrcode.Low); err == nil {
			b.WriteString("Or scan this QR code with a phone:\n\n")
			b.WriteString(q.ToSmallString(false))
			b.WriteString("\n")
		}
	}
	if !d.Expiry.IsZero() {
		fmt.Fprintf(&b, "Waiting for approval; the code expires in %v.\n", time.Until(d.Expiry).Round(time.Minute))
	} else {
		b.WriteString("Waiting for approval.\n")
	}
	t.say(b.String())
}

// Relogin says that the saved login was refused.
func (t *Terminal) Relogin(context.Context) {
	t.say("Your saved login is no longer accepted; log in again.\n\n")
}

// LoggedIn says that the login is done.
func (t *Terminal) LoggedIn(context.Context) { t.say("Logged in.\n") }

// CallbackPage writes the page the browser shows at the end of a browser
// login; every field is escaped as HTML.
func (t *Terminal) CallbackPage(w io.Writer, err error) {
	_ = callbackpage.Own.Execute(w, callbackpage.For(err))
}

// clean makes a string a server chose fit for a terminal: no control or
// bidirectional characters, at most n bytes.
func clean(s string, n int) string { return redact.Clip(s, n) }

// isTerminal reports whether w is a terminal, for the QR code.
func isTerminal(w io.Writer) bool {
	fd, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(fd.Fd()))
}

// OpenBrowser opens url in the desktop's browser, without a shell: the
// command $BROWSER names (its first entry; %s in it stands for the URL),
// else xdg-open on Linux and the BSDs, open on macOS, rundll32 url.dll on
// Windows. It returns once the opener started; the opener is reaped in the
// background and never writes to the terminal.
func OpenBrowser(_ context.Context, url string) error {
	var cmd *exec.Cmd
	switch browser := strings.TrimSpace(strings.Split(os.Getenv("BROWSER"), string(os.PathListSeparator))[0]); {
	case browser != "":
		// $BROWSER, as xdg-open and Python's webbrowser read it: a
		// command, with %s standing for the URL if it says where.
		args := strings.Fields(browser)
		placed := false
		for i, a := range args[1:] {
			if strings.Contains(a, "%s") {
				args[i+1], placed = strings.ReplaceAll(a, "%s", url), true
			}
		}
		if !placed {
			args = append(args, url)
		}
		cmd = exec.Command(args[0], args[1:]...)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", url)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	// Not tied to ctx: killing the opener could take the browser with it.
	go func() { _ = cmd.Wait() }()
	return nil
}
