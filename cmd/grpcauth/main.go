// Command grpcauth shows and uses the grpcauth module.
//
// Usage:
//
//	grpcauth [demo] [flags]   run the loopback demo (the default)
//	grpcauth token [flags]    print an access token for a Flyte deployment
//	grpcauth whoami [flags]   show whom that token names, and ask the deployment
//	grpcauth doctor [flags]   check each hop to the deployment, name the first that fails
//	grpcauth config [flags]   print the resolved configuration
//	grpcauth login [flags]    log in (browser, or device code) and keep the token
//	grpcauth logout [flags]   remove the kept token
//
// `grpcauth demo` needs nothing but Go: it starts an in-process FlyteAdmin
// over TLS and an OAuth2 token endpoint on loopback, dials them with
// grpcauth.New, runs a concurrent workload with a forced token revocation
// half-way, and reports what happened. `grpcauth token` reads the Flyte
// configuration (~/.flyte/config.yaml, FLYTECTL_CONFIG, FLYTE_* variables and
// flags), runs the flow its authType selects (client credentials, the cached
// login of `grpcauth login`, an external command), asking the deployment's
// AuthMetadataService (Flyte 2's, else Flyte 1's) only for what the
// configuration does not name, and prints a token, so it can serve as
// another tool's external command.
// `grpcauth config` prints the configuration the other commands would use,
// with the secret redacted and the source of every value. Every command
// takes --help.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/term"
)

// environment is what the commands read from the process: environment
// variables and the home directory. Tests pass their own.
type environment struct {
	lookup func(name string) (string, bool)
	home   string
	// dir is where the config file search starts; "" is the working
	// directory.
	dir string
	// cacheDir is the token cache's directory when --token-cache-dir does
	// not name one; "" is the user cache directory's grpcauth/tokens.
	cacheDir string
	// browser opens the login URL; nil means the system's browser.
	browser func(ctx context.Context, url string) error
	// stdin is where a browser login's callback address may be pasted:
	// the terminal's standard input, nil when it is not a terminal.
	stdin io.Reader
}

func osEnvironment() environment {
	home, _ := os.UserHomeDir()
	dir, _ := os.Getwd()
	env := environment{lookup: os.LookupEnv, home: home, dir: dir}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		env.stdin = os.Stdin
	}
	return env
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, osEnvironment())
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed
	exitUsage = 2 // bad command line
	exitLogin = 3 // grpcauth token: a login is needed, and it may not run one
)

const usage = `grpcauth: OAuth2 for Flyte clients (Flyte 1 and Flyte 2; client credentials,
browser login, device code, external command, proxyCommand).

Usage:
  grpcauth [demo] [flags]   run the loopback demo (the default)
  grpcauth token [flags]    print an access token for a Flyte deployment
  grpcauth whoami [flags]   show whom that token names, and ask the deployment
  grpcauth doctor [flags]   check each hop to the deployment, name the first that fails
  grpcauth config [flags]   print the resolved configuration, secret redacted
  grpcauth login [flags]    log in (browser, or device code), keep the token
  grpcauth logout [flags]   remove the kept token

Run 'grpcauth <command> --help' for the flags of a command.
`

// run runs the command line args (without the program name) and returns
// the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	cmd, rest := "demo", args
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help" || a == "help":
			fmt.Fprint(stdout, usage)
			return exitOK
		case !strings.HasPrefix(a, "-"):
			cmd, rest = a, args[1:]
		}
	}
	switch cmd {
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr, env)
	case "whoami":
		return runWhoami(ctx, rest, stdout, stderr, env)
	case "doctor":
		return runDoctor(ctx, rest, stdout, stderr, env)
	case "config":
		return runConfig(ctx, rest, stdout, stderr, env)
	case "login":
		return runLogin(ctx, rest, stdout, stderr, env)
	case "logout":
		return runLogout(ctx, rest, stdout, stderr, env)
	}
	fmt.Fprintf(stderr, "grpcauth: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}
