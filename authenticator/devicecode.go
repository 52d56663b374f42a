package authenticator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/skip2/go-qrcode"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/term"

	"github.com/flyteauth/grpcauth/configstore"
)

// Defaults of the device code flow.
const (
	// DefaultDeviceTimeout bounds a whole device login, the person's
	// approval included (flyteidl's deviceFlowConfig.timeout default).
	DefaultDeviceTimeout = 10 * time.Minute
	// DefaultDevicePollInterval is the polling interval used when the
	// server announces none (RFC 8628 §3.2).
	DefaultDevicePollInterval = 5 * time.Second
	// deviceSlowDownStep is what each slow_down adds to the interval (RFC
	// 8628 §3.5).
	deviceSlowDownStep = 5 * time.Second
	// devicePollFailures is how many polls in a row may fail without an
	// OAuth2 answer (a dropped connection, a 502, a garbled body) before
	// the login is given up: the person may be approving right now.
	devicePollFailures = 3
	// deviceCodeGrant is the grant_type of a device access token request
	// (RFC 8628 §3.4).
	deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"
)

// The OAuth2 error codes that steer the polling (RFC 8628 §3.5) and the
// refresh (RFC 6749 §5.2).
const (
	codeAuthorizationPending = "authorization_pending"
	codeSlowDown             = "slow_down"
	codeAccessDenied         = "access_denied"
	codeExpiredToken         = "expired_token"
	codeInvalidGrant         = "invalid_grant"
)

// Errors of the device code flow, matched with errors.Is.
var (
	// ErrNoDeviceEndpoint reports that neither WithDeviceAuthorizationURL
	// nor the config store gave a device authorization endpoint.
	ErrNoDeviceEndpoint = errors.New("no device authorization endpoint: none was set with WithDeviceAuthorizationURL and the config store advertised none")
	// ErrNoDeviceClientID reports that neither WithDeviceClientID nor the
	// config store gave a client id.
	ErrNoDeviceClientID = errors.New("no client id for the device login: none was set with WithDeviceClientID and the config store advertised none")
	// ErrDeviceDenied reports that the person refused the device login
	// (access_denied).
	ErrDeviceDenied = errors.New("the device login was denied")
	// ErrDeviceExpired reports that the device code expired before the
	// person approved it (expired_token, or its expires_in passed).
	ErrDeviceExpired = errors.New("the device code expired before it was approved")
)

// DeviceCodeFlow gets tokens with the OAuth 2.0 device authorization grant
// (RFC 8628), for machines without a browser: it asks the device
// authorization endpoint for a code, shows the person a URL and the code
// (and a QR code of the URL on a terminal), and polls the token endpoint
// until the person approved it on another device. It is flytekit's
// DeviceCodeAuthenticator and Flyte's authType DeviceFlow; give it to a
// Keeper, which decides when a token is needed and keeps it.
//
// With a previous token that has a refresh token, Token first refreshes
// (RFC 6749 §6); only an invalid_grant answer, a refresh token the server no
// longer accepts, makes it ask the person again. The client is public: no
// secret is sent.
//
// A DeviceCodeFlow is immutable and safe for concurrent use, though two
// concurrent logins would each show a prompt: the Keeper makes sure there
// is one.
type DeviceCodeFlow struct {
	clientID     string
	deviceURL    string
	out          io.Writer
	qr           bool
	timeout      time.Duration
	pollInterval time.Duration
	// requestTimeout bounds each HTTP request (device authorization,
	// poll, refresh), so that one hung request costs a poll, not the
	// login.
	requestTimeout time.Duration
	// wait pauses polling for d or until ctx ends; tests replace it.
	wait func(ctx context.Context, d time.Duration) error
}

// DeviceCodeOption configures a DeviceCodeFlow.
type DeviceCodeOption func(*deviceOptions)

type deviceOptions struct {
	clientID     string
	deviceURL    string
	out          io.Writer
	qr           *bool
	timeout      time.Duration
	pollInterval time.Duration
}

// WithDeviceClientID sets the public client id, winning over the config
// store's (Flyte's clientId). Default: the store's public client id.
func WithDeviceClientID(id string) DeviceCodeOption {
	return func(o *deviceOptions) { o.clientID = strings.TrimSpace(id) }
}

// WithDeviceAuthorizationURL sets the device authorization endpoint,
// winning over the config store's device_authorization_endpoint. Default:
// the store's.
func WithDeviceAuthorizationURL(u string) DeviceCodeOption {
	return func(o *deviceOptions) { o.deviceURL = strings.TrimSpace(u) }
}

// WithDevicePrompt sets where the person is shown the URL and the code.
// Default: os.Stderr. Nothing the flow shows is ever logged.
func WithDevicePrompt(w io.Writer) DeviceCodeOption {
	return func(o *deviceOptions) { o.out = w }
}

// WithDeviceQRCode turns the QR code of the verification URL on or off.
// Default: on when the prompt writer is a terminal.
func WithDeviceQRCode(show bool) DeviceCodeOption {
	return func(o *deviceOptions) { o.qr = &show }
}

// WithDeviceTimeout bounds a whole device login, the wait for the person
// included (Flyte's deviceFlowConfig.timeout). Default:
// DefaultDeviceTimeout.
func WithDeviceTimeout(d time.Duration) DeviceCodeOption {
	return func(o *deviceOptions) { o.timeout = d }
}

// WithDevicePollInterval sets the polling interval used when the server
// announces none (Flyte's deviceFlowConfig.pollInterval). An interval the
// server announces always wins: polling faster would only earn slow_down
// answers. Default: DefaultDevicePollInterval.
func WithDevicePollInterval(d time.Duration) DeviceCodeOption {
	return func(o *deviceOptions) { o.pollInterval = d }
}

// NewDeviceCodeFlow returns a device code flow. It does no I/O. It fails on
// a non-positive timeout or poll interval and on a device authorization URL
// that is not absolute http(s).
func NewDeviceCodeFlow(opts ...DeviceCodeOption) (*DeviceCodeFlow, error) {
	o := deviceOptions{out: os.Stderr, timeout: DefaultDeviceTimeout, pollInterval: DefaultDevicePollInterval}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	switch {
	case o.timeout <= 0:
		return nil, fmt.Errorf("authenticator: WithDeviceTimeout: %v is not positive", o.timeout)
	case o.pollInterval <= 0:
		return nil, fmt.Errorf("authenticator: WithDevicePollInterval: %v is not positive", o.pollInterval)
	case o.out == nil:
		return nil, errors.New("authenticator: WithDevicePrompt: nil writer")
	}
	if o.deviceURL != "" {
		if err := checkURL(o.deviceURL); err != nil {
			return nil, fmt.Errorf("authenticator: WithDeviceAuthorizationURL: %w", err)
		}
	}
	qr := isTerminal(o.out)
	if o.qr != nil {
		qr = *o.qr
	}
	return &DeviceCodeFlow{
		clientID:       o.clientID,
		deviceURL:      o.deviceURL,
		out:            o.out,
		qr:             qr,
		timeout:        o.timeout,
		pollInterval:   o.pollInterval,
		requestTimeout: DefaultTokenTimeout,
		wait:           sleepContext,
	}, nil
}

// NewDeviceCodeAuthenticator returns a Keeper whose tokens come from a
// device login (see DeviceCodeFlow) for the service at endpoint: Flyte's
// authType DeviceFlow, flytekit's DeviceCodeAuthenticator. The device
// authorization endpoint, the public client id, the scopes and the
// audience come from store (FlyteAdmin's GetOAuth2Metadata and
// GetPublicClientConfig) unless opts or deviceOpts set them. Give
// WithCache so that a login outlives the process.
func NewDeviceCodeAuthenticator(endpoint string, store configstore.ClientConfigStore, deviceOpts []DeviceCodeOption, opts ...Option) (*Keeper, error) {
	flow, err := NewDeviceCodeFlow(deviceOpts...)
	if err != nil {
		return nil, err
	}
	return New(endpoint, store, flow, opts...)
}

// FlowTimeout returns the bound of a whole login, for the Keeper.
func (f *DeviceCodeFlow) FlowTimeout() time.Duration { return f.timeout }

// FlowClientID returns the client id set with WithDeviceClientID, or ""
// when the config store's is used.
func (f *DeviceCodeFlow) FlowClientID() string { return f.clientID }

// Token refreshes prev when it has a refresh token, and otherwise (or when
// the server answers invalid_grant) runs a device login: it shows the
// person the verification URL and the user code and polls until they
// approve, deny, the code expires or ctx ends. Scopes and the audience come
// from cfg; the audience is sent with the device authorization request.
func (f *DeviceCodeFlow) Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error) {
	if cfg == nil {
		return nil, errors.New("authenticator: device login: no client configuration")
	}
	clientID := cmp.Or(f.clientID, cfg.ClientID)
	switch {
	case clientID == "":
		return nil, fmt.Errorf("authenticator: %w", ErrNoDeviceClientID)
	case cfg.TokenEndpoint == "":
		return nil, fmt.Errorf("authenticator: %w", ErrNoTokenEndpoint)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conf := &oauth2.Config{
		ClientID: clientID,
		Endpoint: oauth2.Endpoint{
			TokenURL:      cfg.TokenEndpoint,
			DeviceAuthURL: cmp.Or(f.deviceURL, cfg.DeviceAuthorizationEndpoint),
			AuthStyle:     oauth2.AuthStyleInParams, // a public client: client_id in the body, no secret
		},
		Scopes: cfg.Scopes,
	}
	if prev != nil && prev.RefreshToken != "" {
		tok, err := f.refresh(ctx, conf, prev.RefreshToken)
		if err == nil {
			return tok, nil
		}
		if te := (*TokenError)(nil); !errors.As(err, &te) || te.ErrorCode != codeInvalidGrant {
			return nil, err
		}
		f.say("Your saved login is no longer accepted; please sign in again.\n\n")
	}
	return f.login(ctx, conf, cfg.Audience)
}

// refresh uses a refresh token (RFC 6749 §6); its error wraps a
// *TokenError.
func (f *DeviceCodeFlow) refresh(ctx context.Context, conf *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	rctx, cancel := context.WithTimeout(ctx, f.requestTimeout)
	defer cancel()
	tok, err := conf.TokenSource(rctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, fmt.Errorf("authenticator: refresh: %w", tokenError(rctx, redactURL(conf.Endpoint.TokenURL), err))
	}
	return tok, nil
}

// login runs one device authorization: request, prompt, poll.
func (f *DeviceCodeFlow) login(ctx context.Context, conf *oauth2.Config, audience string) (*oauth2.Token, error) {
	deviceURL := conf.Endpoint.DeviceAuthURL
	if deviceURL == "" {
		return nil, fmt.Errorf("authenticator: %w", ErrNoDeviceEndpoint)
	}
	if err := checkURL(deviceURL); err != nil {
		return nil, fmt.Errorf("authenticator: device authorization endpoint: %w", err)
	}
	var params []oauth2.AuthCodeOption
	if audience != "" {
		params = append(params, oauth2.SetAuthURLParam("audience", audience))
	}
	rctx, cancel := context.WithTimeout(ctx, f.requestTimeout)
	da, err := conf.DeviceAuth(rctx, params...)
	if err != nil {
		err = deviceAuthError(rctx, deviceURL, err)
	}
	cancel()
	if err != nil {
		return nil, fmt.Errorf("authenticator: device authorization: %w", err)
	}
	if err := checkDeviceAuth(da); err != nil {
		return nil, fmt.Errorf("authenticator: device authorization: answer of %s: %w", redactURL(deviceURL), err)
	}
	f.prompt(da)
	tok, err := f.poll(ctx, conf, da)
	if err != nil {
		return nil, err
	}
	f.say("Approved: signed in.\n")
	return tok, nil
}

// poll asks the token endpoint at the announced interval until the person
// decided, the code expired or ctx ended. Each poll is one token request
// made by x/oauth2 (form, client id, error parsing); the loop is ours
// rather than oauth2.Config.DeviceAccessToken's because that one waits on a
// wall-clock ticker in whole seconds: it cannot take Flyte's pollInterval
// as a duration, and gives up at the first dropped connection.
func (f *DeviceCodeFlow) poll(ctx context.Context, conf *oauth2.Config, da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	interval := f.pollInterval
	if da.Interval > 0 && da.Interval <= math.MaxInt64/int64(time.Second) {
		interval = time.Duration(da.Interval) * time.Second
	}
	waitCtx := ctx
	if !da.Expiry.IsZero() {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithDeadline(ctx, da.Expiry)
		defer cancel()
	}
	poll := clientcredentials.Config{
		ClientID:  conf.ClientID,
		TokenURL:  conf.Endpoint.TokenURL,
		Scopes:    conf.Scopes,
		AuthStyle: oauth2.AuthStyleInParams,
		// x/oauth2 lets grant_type be replaced: this is the device
		// access token request of RFC 8628 §3.4.
		EndpointParams: map[string][]string{
			"grant_type":  {deviceCodeGrant},
			"device_code": {da.DeviceCode},
		},
	}
	tokenURL := redactURL(conf.Endpoint.TokenURL)
	failures := 0
	for {
		if err := f.wait(waitCtx, interval); err != nil {
			return nil, f.gaveUp(ctx, err)
		}
		tok, err := f.pollOnce(waitCtx, &poll, tokenURL)
		if err == nil {
			return tok, nil
		}
		if waitCtx.Err() != nil {
			return nil, f.gaveUp(ctx, waitCtx.Err())
		}
		code := ""
		if te := (*TokenError)(nil); errors.As(err, &te) {
			code = te.ErrorCode
		}
		switch code {
		case codeAuthorizationPending:
			failures = 0
			continue
		case codeSlowDown:
			failures = 0
			interval += deviceSlowDownStep
			continue
		case codeAccessDenied:
			return nil, fmt.Errorf("authenticator: %w: %w", ErrDeviceDenied, err)
		case codeExpiredToken:
			return nil, fmt.Errorf("authenticator: %w: %w", ErrDeviceExpired, err)
		case "":
			// No OAuth2 answer: a dropped connection, a timeout, a
			// proxy's 502, a garbled body. The person may be approving
			// right now.
			if failures++; failures < devicePollFailures {
				continue
			}
		}
		return nil, fmt.Errorf("authenticator: device login: %w", err)
	}
}

// pollOnce makes one device access token request, bounded by the request
// timeout. Its error is a *TokenError.
func (f *DeviceCodeFlow) pollOnce(ctx context.Context, poll *clientcredentials.Config, tokenURL string) (*oauth2.Token, error) {
	rctx, cancel := context.WithTimeout(ctx, f.requestTimeout)
	defer cancel()
	tok, err := poll.Token(rctx)
	if err != nil {
		return nil, tokenError(rctx, tokenURL, err)
	}
	return tok, nil
}

// gaveUp says why polling stopped early: ctx (the caller or the flow
// timeout) or the expiry of the device code.
func (f *DeviceCodeFlow) gaveUp(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("authenticator: device login: no approval within %v: %w", f.timeout, ctx.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("authenticator: device login: %w", ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("authenticator: %w", ErrDeviceExpired)
	}
	return fmt.Errorf("authenticator: device login: %w", err)
}

// checkDeviceAuth checks that a device authorization answer has what the
// flow needs.
func checkDeviceAuth(da *oauth2.DeviceAuthResponse) error {
	var missing []string
	if da.DeviceCode == "" {
		missing = append(missing, "device_code")
	}
	if da.UserCode == "" {
		missing = append(missing, "user_code")
	}
	if da.VerificationURI == "" && da.VerificationURIComplete == "" {
		missing = append(missing, "verification_uri")
	}
	if len(missing) > 0 {
		return fmt.Errorf("no %s in it", strings.Join(missing, ", "))
	}
	return nil
}

// deviceAuthError describes a failed device authorization request the way
// tokenError describes a failed token request: an OAuth2 error answer, an
// answer that is not JSON, or no answer.
func deviceAuthError(ctx context.Context, deviceURL string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) || ctx.Err() != nil {
		return tokenError(ctx, redactURL(deviceURL), err)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "unmarshal "); ok {
		// x/oauth2 answers a 2xx body that is not a device authorization
		// response with "unmarshal <json error>".
		return &TokenError{TokenURL: redactURL(deviceURL), Detail: "the answer is not a device authorization response: " + clip(msg, 200)}
	}
	return tokenError(ctx, redactURL(deviceURL), err)
}

// prompt shows the person where to go and which code to check or enter.
// The code stands on a line of its own, exactly as the server wrote it
// (servers differ in whether they accept it with other separators).
func (f *DeviceCodeFlow) prompt(da *oauth2.DeviceAuthResponse) {
	code := printable(da.UserCode, 64)
	var b strings.Builder
	if u := printable(da.VerificationURIComplete, 2048); u != "" {
		fmt.Fprintf(&b, "To sign in, open this page in a browser on any device:\n\n    %s\n\n", u)
		fmt.Fprintf(&b, "and check that it shows the code:\n\n    %s\n\n", code)
	} else {
		fmt.Fprintf(&b, "To sign in, open this page in a browser on any device:\n\n    %s\n\n", printable(da.VerificationURI, 2048))
		fmt.Fprintf(&b, "and enter the code:\n\n    %s\n\n", code)
	}
	if f.qr {
		target := cmp.Or(da.VerificationURIComplete, da.VerificationURI)
		if q, err := qrcode.New(target, qrcode.Low); err == nil {
			b.WriteString("Or scan this QR code with a phone:\n\n")
			b.WriteString(q.ToSmallString(false))
			b.WriteString("\n")
		}
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(&b, "Waiting for approval; the code expires in %v.\n", time.Until(da.Expiry).Round(time.Minute))
	} else {
		b.WriteString("Waiting for approval.\n")
	}
	f.say(b.String())
}

// say writes to the prompt writer; a prompt that cannot be written is no
// reason to fail (the person may still approve from another session).
func (f *DeviceCodeFlow) say(s string) { _, _ = io.WriteString(f.out, s) }

// printable drops control characters (a hostile server's terminal escape
// sequences) and clips s to n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return clip(s, n)
}

// isTerminal reports whether w is a terminal, for the QR code.
func isTerminal(w io.Writer) bool {
	fd, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(fd.Fd()))
}

// sleepContext waits for d, or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var _ interface {
	TimeoutFlow
	ClientIDFlow
} = (*DeviceCodeFlow)(nil)
