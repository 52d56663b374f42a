package authenticator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/flyteauth/grpcauth/internal/secretfile"
)

// SecretSource supplies the client secret. The authenticator asks it at
// every token request, so a secret rotated in a file or an environment
// variable is picked up without a restart. Implementations are safe for
// concurrent use and never print the secret.
type SecretSource interface {
	// ClientSecret returns the secret, trimmed of surrounding whitespace,
	// or an error that names where it looked (never the value).
	ClientSecret(ctx context.Context) (string, error)
}

// staticSecret is the secret given to NewClientCredentialsAuthenticator.
type staticSecret string

func (s staticSecret) ClientSecret(context.Context) (string, error) { return string(s), nil }
func (staticSecret) String() string                                 { return "[REDACTED]" }
func (staticSecret) GoString() string                               { return "[REDACTED]" }

// Format prints "[REDACTED]" for every verb: without it, a verb that does
// not apply to strings (%d, %x) would make fmt print the value raw.
func (s staticSecret) Format(f fmt.State, verb rune) { formatAs(f, verb, s.String()) }

// LogValue keeps the secret out of log/slog's handlers.
func (s staticSecret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps the secret out of encoding/json.
func (s staticSecret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// formatAs writes text for any fmt verb, quoted for %q.
func formatAs(f fmt.State, verb rune, text string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", text)
		return
	}
	_, _ = io.WriteString(f, text)
}

// SecretFromValue returns a source for a secret known in advance, trimmed
// of surrounding whitespace. The secret sits behind a pointer: fmt,
// printing a struct that holds the source in an unexported field under a
// verb such as %d, shows an address, never the value (a string-typed
// source would be printed raw there). Every printer shows "[REDACTED]".
func SecretFromValue(s string) SecretSource {
	s = strings.TrimSpace(s)
	return heldSecret{&s}
}

// heldSecret is SecretFromValue's source.
type heldSecret struct{ p *string }

func (h heldSecret) ClientSecret(context.Context) (string, error) {
	if *h.p == "" {
		return "", ErrEmptySecret
	}
	return *h.p, nil
}
func (heldSecret) String() string   { return "[REDACTED]" }
func (heldSecret) GoString() string { return "[REDACTED]" }

// Format prints "[REDACTED]" for every verb.
func (h heldSecret) Format(f fmt.State, verb rune) { formatAs(f, verb, h.String()) }

// LogValue keeps the secret out of log/slog's handlers.
func (h heldSecret) LogValue() slog.Value { return slog.StringValue(h.String()) }

// MarshalJSON keeps the secret out of encoding/json.
func (h heldSecret) MarshalJSON() ([]byte, error) { return json.Marshal(h.String()) }

// SecretFromFile returns a source that reads the secret from the file at
// path at every token request, as Flyte's clientSecretLocation does.
func SecretFromFile(path string) SecretSource { return fileSecret(path) }

type fileSecret string

// maxSecretFileSize bounds what is read from a secret file, so that a
// wrong path (a log, a device) cannot exhaust memory or hang a refresh.
const maxSecretFileSize = 64 << 10

func (p fileSecret) ClientSecret(ctx context.Context) (string, error) {
	b, err := secretfile.Read(ctx, string(p), maxSecretFileSize)
	switch {
	case errors.Is(err, secretfile.ErrTooLarge):
		return "", fmt.Errorf("client secret file %s is larger than %d KiB: is it the right file?", string(p), maxSecretFileSize>>10)
	case errors.Is(err, secretfile.ErrNotRegular):
		return "", fmt.Errorf("client secret file: %w (want a regular file, or a symbolic link to one)", err)
	case err != nil:
		// The error names the file and the reason, never the content.
		return "", fmt.Errorf("reading client secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("client secret file %s: %w", string(p), ErrEmptySecret)
	}
	return s, nil
}

func (p fileSecret) String() string   { return "SecretFromFile(" + string(p) + ")" }
func (p fileSecret) GoString() string { return p.String() }

// Format prints String for every verb, so the source reads the same
// whatever the verb.
func (p fileSecret) Format(f fmt.State, verb rune) { formatAs(f, verb, p.String()) }

// LogValue gives log/slog the path the secret is read from.
func (p fileSecret) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON writes String.
func (p fileSecret) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// SecretFromEnv returns a source that reads the secret from the environment
// variable name at every token request, as Flyte's clientSecretEnvVar does.
func SecretFromEnv(name string) SecretSource { return envSecret(name) }

type envSecret string

func (n envSecret) ClientSecret(context.Context) (string, error) {
	v, ok := os.LookupEnv(string(n))
	if !ok {
		return "", fmt.Errorf("client secret environment variable %s is not set", string(n))
	}
	s := strings.TrimSpace(v)
	if s == "" {
		return "", fmt.Errorf("client secret environment variable %s: %w", string(n), ErrEmptySecret)
	}
	return s, nil
}

func (n envSecret) String() string   { return "SecretFromEnv(" + string(n) + ")" }
func (n envSecret) GoString() string { return n.String() }

// Format prints String for every verb, so the source reads the same
// whatever the verb.
func (n envSecret) Format(f fmt.State, verb rune) { formatAs(f, verb, n.String()) }

// LogValue gives log/slog the variable's name, never its value.
func (n envSecret) LogValue() slog.Value { return slog.StringValue(n.String()) }

// MarshalJSON writes String.
func (n envSecret) MarshalJSON() ([]byte, error) { return json.Marshal(n.String()) }
