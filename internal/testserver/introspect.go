package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HydraIntrospectPath is the path of ORY Hydra's token introspection
// endpoint (RFC 7662) on its admin port. Being a constant, it is safe for
// concurrent use.
const HydraIntrospectPath = "/admin/oauth2/introspect"

const (
	maxIntrospectionBody = 1 << 20
	jsonContentType      = "application/json"
)

// Introspection is an RFC 7662 introspection answer, as an authorization
// server such as ORY Hydra gives it. Fields the server left out are zero. It
// is a plain value, safe for concurrent use once built.
type Introspection struct {
	// Active says whether the token is currently valid. When it is false
	// the server says nothing else about the token.
	Active bool `json:"active"`
	// ClientID is the client the token was issued to.
	ClientID string `json:"client_id,omitempty"`
	// Scope is the space-separated list of granted scopes.
	Scope string `json:"scope,omitempty"`
	// Audience is the granted audience. RFC 7662 allows a string or an
	// array on the wire; both decode into a list.
	Audience Audience `json:"aud,omitempty"`
	// ExpiresAt is the expiry as seconds since the Unix epoch, or 0.
	ExpiresAt int64 `json:"exp,omitempty"`
	// IssuedAt is when the token was issued, as seconds since the Unix
	// epoch, or 0.
	IssuedAt int64 `json:"iat,omitempty"`
	// Subject is the token's subject; for the client-credentials grant,
	// the client id.
	Subject string `json:"sub,omitempty"`
	// Issuer is the authorization server's issuer URL.
	Issuer string `json:"iss,omitempty"`
	// TokenType is the token's type, such as "Bearer".
	TokenType string `json:"token_type,omitempty"`
	// TokenUse is Hydra's kind of token, such as "access_token".
	TokenUse string `json:"token_use,omitempty"`
}

// Scopes returns the granted scopes, split on spaces; nil when there are
// none. It is safe for concurrent use.
func (i Introspection) Scopes() []string {
	scopes := strings.Fields(i.Scope)
	if len(scopes) == 0 {
		return nil
	}
	return scopes
}

// Audience is the "aud" member of an introspection answer: a JSON string or
// array of strings, decoded into a list. It is a plain value, safe for
// concurrent use once built.
type Audience []string

// UnmarshalJSON accepts a string (one audience, none when empty), an array
// of strings, or null.
func (a *Audience) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*a = nil
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*a = nil
		if s != "" {
			*a = Audience{s}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("aud: want a string or an array of strings: %w", err)
	}
	*a = list
	return nil
}

// IntrospectionValidator is a TokenValidator that asks an authorization
// server whether a token is active, through ORY Hydra's admin introspection
// endpoint (POST HydraIntrospectPath, RFC 7662). It lets an AdminServer
// accept exactly the tokens a real server issued and still considers valid:
// a revoked or expired token is refused because the server says so. Every
// Validate is one HTTP request; nothing is cached. It is safe for concurrent
// use.
type IntrospectionValidator struct {
	endpoint string
	client   *http.Client
}

// NewIntrospectionValidator returns a validator that introspects tokens at
// adminURL + HydraIntrospectPath, where adminURL is the base URL of Hydra's
// admin API, such as "http://127.0.0.1:4445". Requests go through client,
// which must be safe for concurrent use and carries whatever authentication
// the endpoint needs (Hydra's admin API needs none); nil means
// http.DefaultClient. It fails on a URL that is not absolute http or https,
// or that has a query or fragment. It does no network I/O. It is safe for
// concurrent use.
func NewIntrospectionValidator(adminURL string, client *http.Client) (*IntrospectionValidator, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		// url.Error repeats the URL, which may hold a password.
		return nil, errors.New("testserver: introspection admin URL: not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("testserver: introspection admin URL %q: want an absolute http or https URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("testserver: introspection admin URL %q: want no query, fragment or user information", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + HydraIntrospectPath
	u.RawPath = ""
	if client == nil {
		client = http.DefaultClient
	}
	return &IntrospectionValidator{endpoint: u.String(), client: client}, nil
}

// Endpoint returns the URL of the introspection endpoint. It is safe for
// concurrent use.
func (v *IntrospectionValidator) Endpoint() string { return v.endpoint }

// Introspect asks the server about token and returns its answer, active or
// not. It fails when the server cannot be reached, answers with a status
// other than 200, or answers with something that is not an introspection
// response; the error never contains the token or the raw response body. It
// is safe for concurrent use.
func (v *IntrospectionValidator) Introspect(ctx context.Context, token string) (Introspection, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Introspection{}, fmt.Errorf("testserver: introspect: %w", err)
	}
	req.Header.Set("Content-Type", formContentType)
	req.Header.Set("Accept", jsonContentType)
	resp, err := v.client.Do(req)
	if err != nil {
		return Introspection{}, fmt.Errorf("testserver: introspect: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBody+1))
	if err != nil {
		return Introspection{}, fmt.Errorf("testserver: introspect: read the answer: %w", err)
	}
	if len(body) > maxIntrospectionBody {
		return Introspection{}, fmt.Errorf("testserver: introspect: answer larger than %d bytes", maxIntrospectionBody)
	}
	if resp.StatusCode != http.StatusOK {
		return Introspection{}, introspectionStatusError(resp.StatusCode, body)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != jsonContentType {
		return Introspection{}, fmt.Errorf("testserver: introspect: answer of type %q, want %s", resp.Header.Get("Content-Type"), jsonContentType)
	}
	var in struct {
		Introspection
		Active *bool `json:"active"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return Introspection{}, fmt.Errorf("testserver: introspect: malformed answer: %s", describeJSONError(err))
	}
	if in.Active == nil {
		return Introspection{}, errors.New("testserver: introspect: the answer has no \"active\" member")
	}
	out := in.Introspection
	out.Active = *in.Active
	return out, nil
}

// Validate implements TokenValidator: it returns the token's info when the
// server says the token is active, and an error wrapping ErrTokenInvalid
// when it says it is not. Other failures (server unreachable, bad answer)
// are returned as they are, so they never pass for an invalid token. In the
// TokenInfo, Scopes are the granted scopes, Audience the granted audiences
// joined by spaces (usually just one), and ExpiresAt the zero time when the
// server gave no expiry. It is safe for concurrent use.
func (v *IntrospectionValidator) Validate(ctx context.Context, token string) (TokenInfo, error) {
	in, err := v.Introspect(ctx, token)
	if err != nil {
		return TokenInfo{}, err
	}
	if !in.Active {
		return TokenInfo{}, fmt.Errorf("%w: the authorization server says the token is not active", ErrTokenInvalid)
	}
	info := TokenInfo{
		ClientID: in.ClientID,
		Scopes:   in.Scopes(),
		Audience: strings.Join(in.Audience, " "),
	}
	if in.ExpiresAt > 0 {
		info.ExpiresAt = time.Unix(in.ExpiresAt, 0)
	}
	return info, nil
}

// introspectionStatusError describes a non-200 answer by its status and,
// when the body is an RFC 6749 §5.2 error object, its error code and
// description; never by the raw body.
func introspectionStatusError(status int, body []byte) error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	msg := fmt.Sprintf("testserver: introspect: HTTP %d", status)
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg += ": " + clipText(e.Error)
		if e.Description != "" {
			msg += ": " + clipText(e.Description)
		}
	}
	return errors.New(msg)
}

// describeJSONError names what was wrong with a JSON answer without quoting
// it: a syntax error's offset, or a type error's field.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("member %q has JSON type %s, want %s", typ.Field, typ.Value, typ.Type)
	}
	return "not an introspection response"
}

// clipText bounds a server-supplied string quoted in an error.
func clipText(s string) string {
	const n = 200
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
