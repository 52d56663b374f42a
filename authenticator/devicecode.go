package authenticator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/wholebody"
)

const (
	// defaultDeviceTimeout bounds a whole device login, the person's
	// approval included (flyteidl's deviceFlowConfig.timeout default).
	defaultDeviceTimeout = 10 * time.Minute
	// defaultDevicePollInterval is the polling interval used when the
	// server announces none (RFC 8628 §3.2).
	defaultDevicePollInterval = 5 * time.Second
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

// DeviceConfig configures a device login. Every field is optional but
// Prompter.
type DeviceConfig struct {
	// ClientID is the public client id; default: the config store's.
	ClientID string
	// AuthorizationURL is the device authorization endpoint; default: the
	// store's device_authorization_endpoint.
	AuthorizationURL string
	// Timeout bounds a whole login, the wait for the person included
	// (Flyte's deviceFlowConfig.timeout). Default: 10 minutes.
	Timeout time.Duration
	// PollInterval is used when the server announces none (Flyte's
	// deviceFlowConfig.pollInterval); an interval the server announces
	// always wins. Default: 5 s.
	PollInterval time.Duration
	// Prompter shows the code to the person, such as loginui.Terminal.
	Prompter Prompter
}

// deviceFlow gets tokens with the OAuth 2.0 device authorization grant.
type deviceFlow struct {
	c DeviceConfig
	// requestTimeout bounds each HTTP request (device authorization,
	// poll, refresh), so that one hung request costs a poll, not the
	// login.
	requestTimeout time.Duration
	// wait pauses polling for d or until ctx ends; tests replace it.
	wait func(ctx context.Context, d time.Duration) error
}

// NewDeviceFlow returns the device authorization grant (RFC 8628), for
// machines without a browser: flytekit's DeviceCodeAuthenticator and
// Flyte's authType DeviceFlow. It asks the device authorization endpoint
// for a code, shows the person the URL and the code through c.Prompter,
// and polls the token endpoint until the person approved it on another
// device (or denied it: an *AuthorizationError with access_denied; or the
// code expired: expired_token). With a previous token that has a refresh
// token, it first refreshes (RFC 6749 §6); only an invalid_grant answer
// makes it ask the person again. The client is public: no secret is sent.
// It does no I/O, and fails on a missing Prompter, a negative timeout or
// poll interval, and an authorization URL that is not absolute http(s).
// It is safe for concurrent use; the Keeper runs one login at a time.
func NewDeviceFlow(c DeviceConfig) (Flow, error) {
	switch {
	case c.Prompter == nil:
		return nil, errors.New("authenticator: DeviceConfig.Prompter is nil: a device login needs a person to show the code to (loginui.Terminal)")
	case c.Timeout < 0:
		return nil, fmt.Errorf("authenticator: DeviceConfig.Timeout %v is negative", c.Timeout)
	case c.PollInterval < 0:
		return nil, fmt.Errorf("authenticator: DeviceConfig.PollInterval %v is negative", c.PollInterval)
	}
	c.Timeout = cmp.Or(c.Timeout, defaultDeviceTimeout)
	c.PollInterval = cmp.Or(c.PollInterval, defaultDevicePollInterval)
	c.ClientID = strings.TrimSpace(c.ClientID)
	c.AuthorizationURL = strings.TrimSpace(c.AuthorizationURL)
	if c.AuthorizationURL != "" {
		if err := checkURL(c.AuthorizationURL); err != nil {
			return nil, fmt.Errorf("authenticator: DeviceConfig.AuthorizationURL: %w", err)
		}
	}
	return &deviceFlow{c: c, requestTimeout: DefaultTokenTimeout, wait: sleepContext}, nil
}

func (f *deviceFlow) flowTimeout() time.Duration { return f.c.Timeout }
func (f *deviceFlow) flowClientID() string       { return f.c.ClientID }

// Token refreshes prev when it has a refresh token, and otherwise (or when
// the server answers invalid_grant) runs a device login: it shows the
// person the verification URL and the user code and polls until they
// approve, deny, the code expires or ctx ends. Scopes and the audience come
// from cfg; the audience is sent with the device authorization request.
func (f *deviceFlow) Token(ctx context.Context, cfg *configstore.ClientConfig, prev *oauth2.Token) (*oauth2.Token, error) {
	if cfg == nil {
		return nil, errors.New("device login: no client configuration")
	}
	clientID := cmp.Or(f.c.ClientID, cfg.ClientID)
	switch {
	case clientID == "":
		return nil, fmt.Errorf("device login: %w", ErrNoClientID)
	case cfg.TokenEndpoint == "":
		return nil, fmt.Errorf("device login: %w", ErrNoTokenEndpoint)
	}
	ctx, cancel := context.WithTimeout(ctx, f.c.Timeout)
	defer cancel()
	conf := &oauth2.Config{
		ClientID: clientID,
		Endpoint: oauth2.Endpoint{
			TokenURL:      cfg.TokenEndpoint,
			DeviceAuthURL: cmp.Or(f.c.AuthorizationURL, cfg.DeviceAuthorizationEndpoint),
			AuthStyle:     oauth2.AuthStyleInParams, // a public client: client_id in the body, no secret
		},
		Scopes: cfg.Scopes,
	}
	var refused error
	if prev != nil && prev.RefreshToken != "" {
		tok, err := f.refresh(ctx, conf, prev.RefreshToken)
		if err == nil {
			return tok, nil
		}
		if !refreshRefused(err) {
			return nil, err
		}
		refused = err
	}
	return loginOrWait(ctx, refused, f.c.Prompter, func() (*oauth2.Token, error) {
		return f.login(ctx, conf, cfg)
	})
}

// refresh uses a refresh token (RFC 6749 §6); its error wraps a
// *TokenError.
func (f *deviceFlow) refresh(ctx context.Context, conf *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	rctx, cancel := context.WithTimeout(ctx, f.requestTimeout)
	defer cancel()
	tok, err := conf.TokenSource(rctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", tokenError(rctx, redactURL(conf.Endpoint.TokenURL), err))
	}
	return tok, nil
}

// login runs one device authorization: request, prompt, poll.
func (f *deviceFlow) login(ctx context.Context, conf *oauth2.Config, cfg *configstore.ClientConfig) (*oauth2.Token, error) {
	deviceURL := conf.Endpoint.DeviceAuthURL
	if deviceURL == "" {
		return nil, fmt.Errorf("device login: %w: the deployment advertises no device authorization endpoint (RFC 8628), as FlyteAdmin's own authorization server does not: use the browser login (authType: Pkce) or an identity provider that offers the device flow", ErrNoEndpoint)
	}
	if err := checkURL(deviceURL); err != nil {
		return nil, fmt.Errorf("device authorization endpoint: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, f.requestTimeout)
	da, err := conf.DeviceAuth(boundRequests(rctx), audienceOptions(cfg, false)...)
	if err != nil {
		err = deviceAuthError(rctx, deviceURL, err)
	}
	cancel()
	if err != nil {
		return nil, fmt.Errorf("device authorization: %w", err)
	}
	if err := checkDeviceAuth(da); err != nil {
		return nil, fmt.Errorf("device authorization: answer of %s: %w", redactURL(deviceURL), err)
	}
	f.c.Prompter.DeviceCode(ctx, da)
	tok, err := f.poll(ctx, conf, da, cfg)
	if err != nil {
		return nil, err
	}
	f.c.Prompter.LoggedIn(ctx)
	return tok, nil
}

// poll asks the token endpoint at the announced interval until the person
// decided, the code expired or ctx ended. Each poll is one token request
// made by x/oauth2 (form, client id, error parsing); the loop is ours
// rather than oauth2.Config.DeviceAccessToken's because that one waits on a
// wall-clock ticker in whole seconds: it cannot take Flyte's pollInterval
// as a duration, and gives up at the first dropped connection.
func (f *deviceFlow) poll(ctx context.Context, conf *oauth2.Config, da *oauth2.DeviceAuthResponse, cfg *configstore.ClientConfig) (*oauth2.Token, error) {
	interval := f.c.PollInterval
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
	if r := audienceParams(cfg).Get("resource"); r != "" {
		poll.EndpointParams["resource"] = []string{r} // RFC 8707 §2.2
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
		case codeAccessDenied, codeExpiredToken:
			te := err.(*TokenError)
			return nil, fmt.Errorf("device login: %w", &AuthorizationError{ErrorCode: te.ErrorCode, ErrorDescription: te.ErrorDescription})
		case "":
			// No OAuth2 answer: a dropped connection, a timeout, a
			// proxy's 502, a garbled body. The person may be approving
			// right now.
			if failures++; failures < devicePollFailures {
				continue
			}
		}
		return nil, fmt.Errorf("device login: %w", err)
	}
}

// pollOnce makes one device access token request, bounded by the request
// timeout. Its error is a *TokenError.
func (f *deviceFlow) pollOnce(ctx context.Context, poll *clientcredentials.Config, tokenURL string) (*oauth2.Token, error) {
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
func (f *deviceFlow) gaveUp(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("device login: no approval within %v: %w", f.c.Timeout, ctx.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("device login: %w", ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("device login: %w", &AuthorizationError{ErrorCode: codeExpiredToken, ErrorDescription: "the device code expired before it was approved"})
	}
	return fmt.Errorf("device login: %w", err)
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

var (
	_ timeoutFlow  = (*deviceFlow)(nil)
	_ clientIDFlow = (*deviceFlow)(nil)
)

// maxDeviceAuthAnswer bounds the answer of a device authorization request.
const maxDeviceAuthAnswer = 1 << 20

// boundRequests returns ctx with an HTTP client (the one ctx carries for
// x/oauth2, else http.DefaultClient) whose requests are made with ctx and
// whose answers are read whole, bounded, and closed: x/oauth2's device
// authorization request is made without the context (a hung endpoint would
// hold the login, the keeper's single flight and Close) and leaves the body
// of an answer it does not read to the end open.
func boundRequests(ctx context.Context) context.Context {
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	c.Transport = wholebody.Transport(ctx, hc.Transport, maxDeviceAuthAnswer)
	return context.WithValue(ctx, oauth2.HTTPClient, &c)
}
