package authenticator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/runcmd"
	"github.com/flyteauth/grpcauth/internal/tokentext"
)

const (
	// maxCommandOutput is the most standard output a command may print;
	// a command that prints more fails (an access token is at most a few
	// KiB).
	maxCommandOutput = 64 << 10
	// maxCommandStderr is how much of a command's stderr is kept.
	maxCommandStderr = 4 << 10
	// commandStderrInError is how much of it an error shows.
	commandStderrInError = 512
)

// commandFlow is the ExternalCommand flow.
type commandFlow struct {
	argv    []string
	hideEnv []string // variables the command does not see
}

// NewCommandFlow returns the ExternalCommand flow (flytekit's
// CommandAuthenticator, Flyte's command and proxyCommand): it runs argv
// (argv[0] is looked up in PATH unless it holds a path separator) and takes
// its standard output, trimmed of surrounding whitespace, as the access
// token. When the token is a JWT, its "exp" claim (read without verifying
// the signature: the token is not ours to verify) gives the expiry; any
// other token is used until the server rejects it. Each call of Token runs
// the command once; the Keeper decides when, so the command runs again at
// expiry and after a rejection, once for all concurrent callers.
//
// The command is an argv list run without a shell, with standard input
// empty and the environment of this process, but for the variables named
// in hideEnv (those that hold a secret of this process, such as the client
// secret). It runs in a process group
// of its own (on Unix), and the Keeper's token timeout (WithTokenTimeout),
// or a cancelled request, kills the whole group, so that a helper the
// command started dies with it. Its output is never logged and never put in
// an error; its standard error is kept, clipped, in the *CommandError of a
// failed run. Runs are logged with the Keeper's logger: the first word, how
// long it took, the token's expiry, never the arguments.
//
// It fails on an empty argv or a blank argv[0]; a missing or
// non-executable command is reported by Token, as a *CommandError, so that
// it may be installed after the client starts. It is safe for concurrent
// use.
func NewCommandFlow(argv []string, hideEnv ...string) (Flow, error) {
	if len(argv) == 0 || strings.TrimSpace(argv[0]) == "" {
		return nil, errors.New("authenticator: the command is empty: want an argv list such as [gcloud, auth, print-identity-token]")
	}
	return &commandFlow{argv: slices.Clone(argv), hideEnv: slices.Clone(hideEnv)}, nil
}

// environ is this process's environment without the variables of hideEnv.
func (f *commandFlow) environ() []string {
	env := os.Environ()
	if len(f.hideEnv) == 0 {
		return env
	}
	return slices.DeleteFunc(env, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(f.hideEnv, name)
	})
}

// Format names the command for every fmt verb, %#v included, without its
// arguments, which may hold secrets.
func (f *commandFlow) Format(s fmt.State, _ rune) {
	fmt.Fprintf(s, "command %q with %d arguments", f.argv[0], len(f.argv)-1)
}

// Token runs the command once and returns its output as a bearer token.
// cfg and prev are not used: the command knows where its token comes from.
// Errors are *CommandError.
func (f *commandFlow) Token(ctx context.Context, _ *configstore.ClientConfig, _ *oauth2.Token) (*oauth2.Token, error) {
	logger := loggerFrom(ctx)
	start := time.Now()
	logger.Debug("authenticator: running token command", "command", f.argv[0])
	tok, err := f.run(ctx)
	if err != nil {
		// Its stderr goes only to debug: it is the command's to word, and
		// the error carries it to whoever asked.
		var ce *CommandError
		if errors.As(err, &ce) {
			logger.Warn("authenticator: token command failed", "command", ce.Command, "reason", ce.Reason, "exit_code", ce.ExitCode)
			if ce.Stderr != "" {
				logger.Debug("authenticator: token command stderr", "command", ce.Command, "stderr", clip(ce.Stderr, commandStderrInError))
			}
		}
		return nil, err
	}
	logger.Debug("authenticator: token command succeeded", "command", f.argv[0], "took", time.Since(start), "expiry", tok.Expiry)
	return tok, nil
}

func (f *commandFlow) run(ctx context.Context) (*oauth2.Token, error) {
	out, err := runcmd.Run(ctx, f.argv, f.environ(), maxCommandOutput, maxCommandStderr)
	fail := func(reason string, exitCode int, cause error) error {
		return &CommandError{Command: f.argv[0], Reason: reason, ExitCode: exitCode, Stderr: out.Stderr, Err: cause}
	}
	if re := (*runcmd.Error)(nil); errors.As(err, &re) {
		return nil, fail(re.Reason, re.ExitCode, re.Err)
	}
	if out.StdoutOverflow {
		return nil, fail(fmt.Sprintf("printed more than %d bytes", maxCommandOutput), 0, nil)
	}
	token := strings.TrimSpace(out.Stdout)
	if token == "" {
		return nil, fail("printed no token", 0, nil)
	}
	if !tokentext.Valid(token) {
		return nil, fail("printed something that is not a token (spaces, control or non-ASCII characters)", 0, nil)
	}
	tok := &oauth2.Token{AccessToken: token, TokenType: "Bearer"}
	if exp, ok := jwtExpiry(token); ok {
		if !exp.After(time.Now()) {
			return nil, fail(fmt.Sprintf("printed a JWT that expired at %s", exp.UTC().Format(time.RFC3339)), 0, nil)
		}
		tok.Expiry = exp
	}
	return tok, nil
}

// jwtExpiry returns the "exp" claim of token if it is a JWT that has one.
// The signature is not verified: the client only wants to know when to ask
// for a new token, and the server checks the token anyway.
func jwtExpiry(token string) (time.Time, bool) {
	if strings.Count(token, ".") != 2 {
		return time.Time{}, false
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return time.Time{}, false
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, false
	}
	return exp.Time, true
}

// CommandError reports a failed run of an external token command. Its text
// names the command's first word and why it failed, with the clipped
// standard error; never the arguments or the standard output, which may
// hold a token.
type CommandError struct {
	// Command is the command's first word, argv[0].
	Command string
	// Reason says what went wrong, such as "exited with status 1".
	Reason string
	// ExitCode is the command's exit status; -1 when it did not exit by
	// itself (it could not start, timed out or was killed).
	ExitCode int
	// Stderr is the start of what the command wrote to standard error,
	// cleaned of control characters.
	Stderr string
	// Err is the underlying cause, if any, such as exec.ErrNotFound or
	// context.DeadlineExceeded.
	Err error
}

// Error describes the failure in one line.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token command %q %s", e.Command, e.Reason)
	if e.Err != nil && !errors.Is(e.Err, context.DeadlineExceeded) {
		fmt.Fprintf(&b, ": %s", clip(e.Err.Error(), 256))
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, "; stderr: %s", clip(s, commandStderrInError))
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *CommandError) Unwrap() error { return e.Err }
