package authenticator

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
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

// SecretFromFile returns a source that reads the secret from the file at
// path at every token request, as Flyte's clientSecretLocation does.
func SecretFromFile(path string) SecretSource { return fileSecret(path) }

type fileSecret string

// maxSecretFileSize bounds what is read from a secret file, so that a
// wrong path (a log, a device) cannot exhaust memory or hang a refresh.
const maxSecretFileSize = 64 << 10

func (p fileSecret) ClientSecret(context.Context) (string, error) {
	f, err := os.Open(string(p))
	if err != nil {
		// The *PathError names the file and the reason, never the content.
		return "", fmt.Errorf("reading client secret: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("reading client secret: %w", err)
	}
	if len(b) > maxSecretFileSize {
		return "", fmt.Errorf("client secret file %s is larger than %d KiB: is it the right file?", string(p), maxSecretFileSize>>10)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("client secret file %s: %w", string(p), ErrEmptySecret)
	}
	return s, nil
}

func (p fileSecret) String() string   { return "SecretFromFile(" + string(p) + ")" }
func (p fileSecret) GoString() string { return p.String() }

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
