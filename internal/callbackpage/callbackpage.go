// Package callbackpage is the page the browser shows at the end of a
// browser login: what it says for each outcome, grpcauth's own page, and a
// page of the user's (Flyte's pkceConfig.callbackPage), an html/template
// that gets the same fields, so that every value a server chose is escaped
// whichever page shows it.
package callbackpage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/secretfile"
)

// MaxSize is the largest page file Load reads.
const MaxSize = 256 << 10

// Data is what a page is given.
type Data struct {
	// OK is set when the login succeeded.
	OK bool
	// Title and Message say what happened, in a sentence each.
	Title, Message string
	// Code and Detail are the authorization server's error code and
	// description, or the error, when the login failed; made printable
	// and clipped.
	Code, Detail string
	// Endpoint is the Flyte endpoint logged in to ("" on grpcauth's own
	// page, which the prompter shows without knowing it).
	Endpoint string
}

// For says what the page shows for err, the login's outcome (nil: logged
// in).
func For(err error) Data {
	var ae *authenticator.AuthorizationError
	switch {
	case err == nil:
		return Data{OK: true, Title: "Logged in", Message: "You are logged in. You can close this window and return to the terminal."}
	case errors.Is(err, authenticator.ErrStateMismatch):
		return Data{Title: "Login failed", Message: "This answer does not belong to the login that is waiting (state mismatch). Start the login again."}
	case errors.As(err, &ae):
		return Data{Title: "Login failed", Message: "The authorization server refused the login.", Code: redact.Clip(ae.ErrorCode, 64), Detail: redact.Clip(ae.ErrorDescription, 256)}
	}
	return Data{Title: "Login failed", Message: "The login did not succeed.", Detail: redact.Clip(err.Error(), 256)}
}

// Own is grpcauth's page.
var Own = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}code{background:#f3f3f3;padding:.1em .3em}</style>
</head><body><h1 id="title">{{.Title}}</h1><p id="message">{{.Message}}</p>
{{- if .Code}}<p>Error: <code id="error">{{.Code}}</code></p>{{end}}
{{- if .Detail}}<p id="detail">{{.Detail}}</p>{{end}}
</body></html>
`))

// Load reads the page at path (a regular file of at most MaxSize bytes;
// a named pipe or a device is refused without waiting) and parses it as
// an html/template. It runs the template once for a success and once for
// a failure, so that a field that does not exist fails here and not in
// the person's browser. Errors name path.
func Load(ctx context.Context, path string) (*template.Template, error) {
	b, err := secretfile.Read(ctx, path, MaxSize)
	if err != nil {
		return nil, err
	}
	t, err := template.New(path).Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s is not an html/template: %w", path, err)
	}
	for _, d := range []Data{For(nil), For(errors.New("example failure"))} {
		if err := t.Execute(io.Discard, d); err != nil {
			return nil, fmt.Errorf("%s: %w (the fields are .OK, .Title, .Message, .Code, .Detail and .Endpoint)", path, err)
		}
	}
	return t, nil
}

// Wrap returns p with its callback page replaced by t, given endpoint.
// Should t fail for an outcome, the browser gets grpcauth's own page and
// logger hears why.
func Wrap(p authenticator.Prompter, t *template.Template, endpoint string, logger *slog.Logger) authenticator.Prompter {
	return wrapped{Prompter: p, t: t, endpoint: redact.URL(endpoint), logger: logger}
}

type wrapped struct {
	authenticator.Prompter
	t        *template.Template
	endpoint string
	logger   *slog.Logger
}

func (w wrapped) CallbackPage(out io.Writer, err error) {
	d := For(err)
	d.Endpoint = w.endpoint
	var b bytes.Buffer
	if xerr := w.t.Execute(&b, d); xerr != nil {
		if w.logger != nil {
			w.logger.Warn("grpcauth: the callback page (pkceConfig.callbackPage) failed; showing grpcauth's own", "error", redact.Clip(xerr.Error(), 256))
		}
		b.Reset()
		_ = Own.Execute(&b, d)
	}
	_, _ = out.Write(b.Bytes())
}
