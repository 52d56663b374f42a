package reliability_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/flyteconfig"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// printed collects how values print with every verb a user might log
// them with.
type printed []string

func (p *printed) add(values ...any) {
	for _, v := range values {
		verbs := []string{"%v", "%+v", "%#v"}
		switch v.(type) {
		case fmt.Stringer, error, string:
			// %s and %q of anything else print it as a bad verb, walking
			// into the internals of every pointer it holds.
			verbs = append(verbs, "%s", "%q")
		}
		for _, verb := range verbs {
			*p = append(*p, fmt.Sprintf(verb, v))
		}
		if err, ok := v.(error); ok && err != nil {
			*p = append(*p, err.Error())
		}
	}
}

// addCallError adds a failed call's error, and what errors.As reaches in it.
func (p *printed) addCallError(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	p.add(err, status.Convert(err), status.Convert(err).Proto())
	var re *interceptor.RefreshError
	if errors.As(err, &re) {
		p.add(re, *re)
	}
	var te *authenticator.TokenError
	if errors.As(err, &te) {
		p.add(te, *te)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var out printed
	var rigs []*rig

	t.Run("success paths", func(t *testing.T) {
		r := newRig(t, rigConfig{tcp: true})
		rigs = append(rigs, r)
		for range 2 {
			for _, s := range allShapes {
				require.NoError(t, r.callWithin(t, s, callTimeout), "%s call", s.name)
			}
			r.revokeAll() // the second round refreshes after a rejection
		}
		cfg, err := r.store.GetClientConfig(t.Context())
		require.NoError(t, err)
		// Not r.store: it has no String method, so fmt would read its
		// internals while its last fetch goroutine may still be exiting.
		out.add(r.auth, r.auth.Stats(), cfg, *cfg)
	})

	t.Run("token endpoint failures", func(t *testing.T) {
		r := newRig(t, rigConfig{authOpts: []authenticator.Option{authenticator.WithTokenTimeout(300 * time.Millisecond)}})
		rigs = append(rigs, r)
		// The refusal for good last: the pause after it would keep the
		// other faults from being met.
		for _, f := range []testserver.Fault{
			testserver.FaultStatus(500, "text/html", htmlBody),
			testserver.FaultGarbage(),
			testserver.FaultResetMidBody(),
			testserver.FaultHang(),
			testserver.FaultOAuthError(401, "invalid_client", "bad client secret"),
		} {
			r.tokens.SetFault(f)
			r.revokeAll()
			// Asked for outright, a token request goes out at once; the
			// calls within the pause after it get its failure.
			require.Error(t, r.auth.RefreshCredentials(t.Context()))
			for _, s := range []shape{unary, bidi} {
				out.addCallError(t, r.callWithin(t, s, callTimeout))
			}
		}
		out.add(r.auth)
	})

	t.Run("wrong secret", func(t *testing.T) {
		src := newSwitchSecret(secret + " but wrong")
		r := newRig(t, rigConfig{secretSource: src})
		rigs = append(rigs, r)
		err := r.callWithin(t, unary, callTimeout)
		require.ErrorContains(t, err, "invalid_client")
		out.addCallError(t, err)
		out.add(r.auth, src)
	})

	t.Run("AuthMetadataService failure", func(t *testing.T) {
		r := newRig(t, rigConfig{})
		rigs = append(rigs, r)
		r.admin.SetMetadataError(status.Error(codes.Unavailable, "down"))
		out.addCallError(t, r.callWithin(t, unary, callTimeout))
	})

	t.Run("token withheld on plaintext", func(t *testing.T) {
		r := newRig(t, rigConfig{plaintext: true})
		rigs = append(rigs, r)
		out.addCallError(t, r.callWithin(t, unary, callTimeout))
	})

	t.Run("secret from a file and from the environment", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "client_secret")
		require.NoError(t, os.WriteFile(file, []byte("\n  "+secret+"\n"), 0o600))
		t.Setenv("RELIABILITY_CLIENT_SECRET", secret)
		for _, src := range []authenticator.SecretSource{
			authenticator.SecretFromFile(file),
			authenticator.SecretFromEnv("RELIABILITY_CLIENT_SECRET"),
		} {
			r := newRig(t, rigConfig{secretSource: src})
			rigs = append(rigs, r)
			require.NoError(t, r.callWithin(t, unary, callTimeout))
			out.add(src, r.auth)
		}
		_, err := authenticator.SecretFromFile(file + ".missing").ClientSecret(t.Context())
		out.add(err)
	})

	t.Run("root package Config and New", func(t *testing.T) {
		r := newRig(t, rigConfig{tcp: true})
		rigs = append(rigs, r)
		dir := t.TempDir()
		caFile, err := r.ca.WriteCertFile(dir)
		require.NoError(t, err)
		file := filepath.Join(dir, "config.yaml")
		yaml := fmt.Sprintf("admin:\n  endpoint: dns:///%s\n  caCertFilePath: %s\n  authType: ClientSecret\n  clientId: %s\n", r.admin.Addr(), caFile, clientID)
		require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
		env := map[string]string{"FLYTE_CREDENTIALS_CLIENT_SECRET": secret}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

		loaded, err := flyteconfig.Load(flyteconfig.Options{File: file, LookupEnv: lookup, HomeDir: dir})
		require.NoError(t, err)
		cfg := loaded.Config
		require.Equal(t, secret, cfg.ClientSecret, "the secret came from the environment")
		out.add(cfg, &cfg, loaded, loaded.Settings(), struct{ C grpcauth.Config }{cfg}, loaded.SecretSource())

		client, err := grpcauth.New(cfg,
			grpcauth.WithAuthenticatorOptions(authenticator.WithLogger(r.logs.logger())),
			grpcauth.WithInterceptorOptions(interceptor.WithLogger(r.logs.logger())))
		require.NoError(t, err)
		t.Cleanup(func() { _ = client.Close() })
		echo := testserver.NewEchoClient(client.Conn)
		got, err := echo.Unary(t.Context(), "via grpcauth.New")
		require.NoError(t, err)
		require.Equal(t, "via grpcauth.New", got)
		out.add(client, client.Authenticator)

		r.tokens.SetFault(testserver.FaultOAuthError(401, "invalid_client", "nope"))
		r.revokeAll()
		_, err = echo.Unary(t.Context(), "x")
		out.addCallError(t, err)

		require.NoError(t, os.WriteFile(file, []byte("admin:\n  insecure: [not, a, bool]\n"), 0o600))
		_, err = flyteconfig.Load(flyteconfig.Options{File: file, LookupEnv: lookup, HomeDir: dir})
		require.Error(t, err)
		out.add(err)
	})

	// The checks are not vacuous: the failures were logged, and the texts
	// name their causes.
	all := strings.Join(out, "\n")
	for _, want := range []string{"invalid_client", "HTTP 500", "no answer within the token timeout", "unexpected EOF", "Unavailable", withheldMsg, "[REDACTED]"} {
		require.Contains(t, all, want)
	}
	logLines := 0
	for _, r := range rigs {
		logLines += r.logs.lines()
		r.requireNoLeak(t, out...)
	}
	require.Positive(t, logLines)
	t.Logf("checked %d printed values and errors and %d log lines for the secret and %d access tokens", len(out), logLines, countTokens(rigs))
}

func countTokens(rigs []*rig) int {
	n := 0
	for _, r := range rigs {
		n += len(r.valid.seenTokens())
	}
	return n
}
