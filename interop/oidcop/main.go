// Command oidcop is a real OpenID provider for the interop tests of the
// device code flow: the OP of github.com/zitadel/oidc/v3 (pkg/op), which
// implements the device authorization grant (RFC 8628), refresh tokens and
// token introspection, over an in-memory storage written for these tests.
//
// It listens on a free loopback port and writes its base URL as the first
// line of standard output ("oidcop: serving http://127.0.0.1:PORT"), then
// serves until it is terminated. Its issuer is that URL.
//
// Registered: a public client that may use the device grant (-client), a
// resource server that may introspect (-resource-server with
// -resource-secret), and one user (-user, -password). A person approves a
// user code the way zitadel's example OP lets them: open
// /device?user_code=..., sign in, then allow or deny on a confirmation page.
//
// Test-only endpoints (POST): /testing/expire-access-tokens ends the life
// of every access token issued so far; /testing/revoke-refresh-tokens
// forgets every refresh token. GET /testing/stats answers counters as JSON.
//
// It is a module of its own, so that the provider's dependencies never
// enter the interop module, which builds Hydra.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "oidcop: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		clientID       = flag.String("client", "flytectl", "id of the public client that uses the device grant")
		resourceServer = flag.String("resource-server", "flyteadmin", "id of the confidential client that may introspect")
		resourceSecret = flag.String("resource-secret", "", "secret of the resource server (required)")
		user           = flag.String("user", "alice", "the one user's name")
		password       = flag.String("password", "", "the one user's password (required)")
		lifetime       = flag.Duration("token-lifetime", time.Hour, "lifetime of access tokens")
		interval       = flag.Duration("interval", time.Second, "device polling interval announced, whole seconds")
		codeLifetime   = flag.Duration("code-lifetime", 5*time.Minute, "lifetime of a device code")
	)
	flag.Parse()
	if *resourceSecret == "" || *password == "" {
		return errors.New("-resource-secret and -password are required")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(logger)

	st, err := newStorage([]*client{
		{id: *clientID},
		{id: *resourceServer, secret: *resourceSecret, resourceServer: true},
	}, map[string]string{*user: *password}, *lifetime)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return err
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CryptoKeyId:           "oidcop",
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     *codeLifetime,
			PollInterval: *interval,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}, st, op.StaticIssuer(issuer),
		op.WithAllowInsecure(), // http on loopback
		op.WithLogger(logger),
	)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	pages, err := newDevicePages(st)
	if err != nil {
		return err
	}
	pages.register(mux)
	mux.HandleFunc("POST /testing/expire-access-tokens", func(w http.ResponseWriter, _ *http.Request) {
		st.expireAccessTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /testing/revoke-refresh-tokens", func(w http.ResponseWriter, _ *http.Request) {
		st.revokeRefreshTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /testing/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, st.snapshot())
	})
	mux.Handle("/", provider)

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("oidcop: serving %s\n", issuer)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
