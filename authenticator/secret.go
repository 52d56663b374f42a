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

// secretSource is the SecretSource of SecretFromValue, SecretFromFile and
// SecretFromEnv. A held value sits behind a pointer: fmt, printing a struct
// that holds the source under a verb such as %d, shows an address, never
// the value. Every printer shows the source, never the secret.
type secretSource struct {
	value *string // SecretFromValue's secret, trimmed
	file  string  // SecretFromFile's path
	env   string  // SecretFromEnv's variable
}

// SecretFromValue returns a source for a secret known in advance, trimmed
// of surrounding whitespace.
func SecretFromValue(s string) SecretSource {
	s = strings.TrimSpace(s)
	return secretSource{value: &s}
}

// SecretFromFile returns a source that reads the secret from the file at
// path at every token request, as Flyte's clientSecretLocation does. The
// file must be a regular file (or a symbolic link to one) of at most
// 64 KiB: a FIFO or a device is refused, never waited on.
func SecretFromFile(path string) SecretSource { return secretSource{file: path} }

// SecretFromEnv returns a source that reads the secret from the environment
// variable name at every token request, as Flyte's clientSecretEnvVar does.
func SecretFromEnv(name string) SecretSource { return secretSource{env: name} }

// maxSecretFileSize bounds what is read from a secret file, so that a
// wrong path (a log, a device) cannot exhaust memory or hang a refresh.
const maxSecretFileSize = 64 << 10

// ClientSecret reads the secret. Errors name where it looked, never the
// value or the file's content.
func (s secretSource) ClientSecret(ctx context.Context) (string, error) {
	switch {
	case s.value != nil:
		if *s.value == "" {
			return "", ErrEmptySecret
		}
		return *s.value, nil
	case s.env != "":
		v, ok := os.LookupEnv(s.env)
		if !ok {
			return "", fmt.Errorf("client secret environment variable %s is not set", s.env)
		}
		if v = strings.TrimSpace(v); v == "" {
			return "", fmt.Errorf("client secret environment variable %s: %w", s.env, ErrEmptySecret)
		}
		return v, nil
	}
	b, err := secretfile.Read(ctx, s.file, maxSecretFileSize)
	switch {
	case errors.Is(err, secretfile.ErrTooLarge):
		return "", fmt.Errorf("client secret file %s is larger than %d KiB: is it the right file?", s.file, maxSecretFileSize>>10)
	case errors.Is(err, secretfile.ErrNotRegular):
		return "", fmt.Errorf("client secret file: %w (want a regular file, or a symbolic link to one)", err)
	case err != nil:
		return "", fmt.Errorf("reading client secret: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("client secret file %s: %w", s.file, ErrEmptySecret)
	}
	return v, nil
}

// String names the source, never the secret.
func (s secretSource) String() string {
	switch {
	case s.value != nil:
		return "[REDACTED]"
	case s.env != "":
		return "SecretFromEnv(" + s.env + ")"
	}
	return "SecretFromFile(" + s.file + ")"
}

// Format prints String for every verb, %#v included: without it, a verb
// that does not apply to strings (%d, %x) would make fmt print fields raw.
func (s secretSource) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// LogValue keeps the secret out of log/slog's handlers.
func (s secretSource) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps the secret out of encoding/json.
func (s secretSource) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
