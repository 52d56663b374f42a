package main

// The sweep of what each command prints when something is wrong: the
// message is for the person at the terminal, so it names config keys and
// next steps, never a Go option or type; it says each thing once (no
// "x: x:" prefix twice, no log line repeating the error); and it never
// says a flow reads a secret it does not use.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goNames are identifiers of the Go API that a message for a person must
// not name.
var goNames = regexp.MustCompile(`\bWith[A-Z][A-Za-z]+\b|\b(authenticator|configstore|interceptor|tokencache|connectauth|flyteconfig|loginui)\.[A-Z]\w*|\bgrpcauth\.(New|Config|Option)\b|\bNew[A-Z]\w*Flow\b`)

// saidTwice returns the prefixes text says twice in a row, as in
// "authenticator: authenticator: ...".
func saidTwice(text string) []string {
	var out []string
	for line := range strings.Lines(text) {
		parts := strings.Split(line, ": ")
		for i := 0; i+1 < len(parts); i++ {
			a, b := parts[i], parts[i+1]
			if b != "" && len(b) <= 40 && strings.HasSuffix(a, b) && (len(a) == len(b) || a[len(a)-len(b)-1] == ' ') {
				out = append(out, b+": "+b+":")
			}
		}
	}
	return out
}

// sweepCase is one fault, and the command line that provokes it.
type sweepCase struct {
	name string
	args []string
	env  map[string]string
	// config is the body of a config file given with --config, if any.
	config string
	// secretUnused: the flow uses no client secret although one is set.
	secretUnused bool
	// says is what token, whoami and logout, which ask for the token,
	// say of it.
	says string
}

// sweepCases are the faults every command is run against.
func sweepCases(t *testing.T) []sweepCase {
	s := newServers(t)
	login := newLoginServers(t)
	tls := []string{"--endpoint", "dns:///" + s.admin.Addr(), "--ca-cert", s.caFile}
	cc := append(append([]string{}, tls...), "--client-id", clientID)
	missing := filepath.Join(t.TempDir(), "absent")
	return []sweepCase{
		{name: "no endpoint"},
		{name: "unknown authType", args: append(append([]string{}, cc...), "--auth-type", "Kerberos", "--client-secret-file", secretFile(t, secret))},
		{name: "wrong secret", args: append(append([]string{}, cc...), "--client-secret-file", secretFile(t, "wrong-"+secret))},
		{name: "secret file missing", args: append(append([]string{}, cc...), "--client-secret-file", missing)},
		{name: "no secret", args: cc, says: "hint: no client secret was set, and the default file /etc/secrets/client_secret is not there: set admin.clientSecretLocation (--client-secret-file)"},
		{name: "device flow without a device endpoint", args: append(append([]string{}, tls...), "--auth-type", "DeviceFlow", "--client-id", publicClientID)},
		{name: "pkce given a secret", secretUnused: true,
			args: []string{"--endpoint", login.admin.Addr(), "--insecure", "--auth-type", "Pkce", "--client-secret-file", secretFile(t, secret)}},
		{name: "external command missing", secretUnused: true, env: map[string]string{"FLYTE_CREDENTIALS_COMMAND": missing},
			args: append(append([]string{}, tls...), "--auth-type", "ExternalCommand", "--authorization-header", "authorization", "--client-secret-file", secretFile(t, secret))},
		{name: "plaintext to a TLS server", says: "could not ask FlyteAdmin at " + s.admin.Addr() + " (plaintext, insecure) for its auth settings: Unavailable: ", args: []string{"--endpoint", s.admin.Addr(), "--insecure", "--client-id", clientID, "--client-secret-file", secretFile(t, secret)}},
		{name: "TLS without the CA", args: []string{"--endpoint", "dns:///" + s.admin.Addr(), "--client-id", clientID, "--client-secret-file", secretFile(t, secret)}},
		{name: "nothing listening", says: "hint: 'grpcauth doctor' checks each hop to the deployment and names the first that fails", args: []string{"--endpoint", "127.0.0.1:1", "--insecure", "--client-id", clientID, "--client-secret-file", secretFile(t, secret)}},
		{name: "token endpoint over plain http", args: append(append([]string{}, cc...), "--client-secret-file", secretFile(t, secret), "--token-url", "http://idp.example.invalid/token")},
		{name: "proxyCommand failing", config: "admin:\n  proxyCommand: [\"" + missing + "\"]\n",
			args: append(append([]string{}, cc...), "--client-secret-file", secretFile(t, secret))},
	}
}

// sweep runs cmd against every fault and checks what it printed. The
// commands' sweeps run side by side: each has its own servers and
// environment.
func sweep(t *testing.T, cmd string, extra ...string) {
	t.Parallel()
	for _, c := range sweepCases(t) {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{cmd}, extra...)
			if c.config != "" {
				f := filepath.Join(t.TempDir(), "config.yaml")
				require.NoError(t, os.WriteFile(f, []byte(c.config), 0o600))
				args = append(args, "--config", f)
			}
			args = append(args, c.args...)
			env := fakeEnv(c.env)
			env.browser, _ = followBrowser(t)
			code, out, errOut := runCmd(t, env, args...)
			all := out + errOut
			t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			assert.Empty(t, goNames.FindAllString(all, -1), "a Go name in a message for a person")
			assert.Empty(t, saidTwice(all), "a prefix said twice")
			assert.NotContains(t, all, "level=WARN", "a log line beside the command's own message")
			assert.NotRegexp(t, `(?m)(^grpcauth \w+: |^  FAIL  \S+(\s\S+)?\s+)(grpcauth|authenticator|configstore|tokencache): `, all, "a package's prefix where the command names itself")
			if c.says != "" && (cmd == "token" || cmd == "whoami" || cmd == "logout") {
				assert.Contains(t, errOut, c.says)
			}
			assert.NotContains(t, all, secret, "the secret itself")
			if c.secretUnused {
				assert.NotRegexp(t, `(?i)client secret (read )?from: (file|env)`, all, "a secret the flow does not use, shown as read")
			}
			for line := range strings.Lines(errOut) {
				if strings.HasPrefix(line, "grpcauth "+cmd+": ") && len(line) > 80 {
					assert.Equal(t, 1, strings.Count(all, strings.TrimSpace(line)[len("grpcauth "+cmd+": "):][:60]), "said once: %q", line)
				}
			}
		})
	}
}

func TestMessagesToken(t *testing.T)  { sweep(t, "token") }
func TestMessagesWhoami(t *testing.T) { sweep(t, "whoami") }
func TestMessagesDoctor(t *testing.T) { sweep(t, "doctor", "--timeout", "5s") }
func TestMessagesConfig(t *testing.T) { sweep(t, "config") }
func TestMessagesLogin(t *testing.T)  { sweep(t, "login", "--timeout", "5s") }
func TestMessagesLogout(t *testing.T) { sweep(t, "logout") }
