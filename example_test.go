package grpcauth_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// Example dials an in-process FlyteAdmin over TLS with client credentials
// and makes one call. With a real deployment, grpcauth.LoadConfig() reads
// the same settings from ~/.flyte/config.yaml.
func Example() {
	ca, err := testserver.NewCA()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "grpcauth-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	caFile, err := ca.WriteCertFile(dir)
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := testserver.NewTokenServer(testserver.WithTokenTLS(ca), testserver.WithClient("my-client", "my-secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer tokens.Close()
	admin, err := testserver.NewAdminServer(testserver.WithTCP(), testserver.WithAdminTLS(ca), testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()

	conn, err := grpcauth.NewClient(grpcauth.Config{
		Endpoint:       "dns:///" + admin.Addr(),
		CACertFilePath: caFile,
		AuthType:       "ClientSecret",
		ClientID:       "my-client",
		ClientSecret:   "my-secret",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := testserver.NewEchoClient(conn).Unary(ctx, "hello, Flyte")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply)
	fmt.Println("tokens issued:", tokens.Issued())
	// Output:
	// hello, Flyte
	// tokens issued: 1
}

// ExampleLoadConfigWith loads a Flyte config file, lets an environment
// variable override it, and shows where each value came from.
func ExampleLoadConfigWith() {
	dir, err := os.MkdirTemp("", "grpcauth-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	err = os.WriteFile(path, []byte(`
admin:
  endpoint: dns:///flyte.example.com:443
  authType: ClientSecret
  clientId: my-client
  clientSecretLocation: /etc/secrets/my_secret
  scopes: [all]
logger:
  level: 4
`), 0o600)
	if err != nil {
		log.Fatal(err)
	}
	environment := map[string]string{
		"FLYTECTL_CONFIG":                 path,
		"FLYTE_CREDENTIALS_CLIENT_SECRET": "not-printed",
	}
	cfg, err := grpcauth.LoadConfigWith(grpcauth.LoadOptions{
		LookupEnv: func(name string) (string, bool) {
			v, ok := environment[name]
			return v, ok
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range cfg.Settings() {
		if s.Source == grpcauth.SourceDefault {
			continue
		}
		source := s.Source
		if source == cfg.File() {
			source = "config.yaml"
		}
		fmt.Printf("%-21s %-30s %s\n", s.Key, s.Value, source)
	}
	// Output:
	// endpoint              dns:///flyte.example.com:443   config.yaml
	// authType              ClientSecret                   config.yaml
	// clientId              my-client                      config.yaml
	// clientSecretLocation  /etc/secrets/my_secret         config.yaml
	// scopes                all                            config.yaml
	// clientSecret          [REDACTED]                     env FLYTE_CREDENTIALS_CLIENT_SECRET
}

// ExampleConfig_String shows that printing a Config never shows the
// secret.
func ExampleConfig_String() {
	cfg := grpcauth.Config{Endpoint: "dns:///flyte.example.com:443", ClientID: "my-client", ClientSecret: "hunter2"}
	fmt.Printf("%+v\n", cfg)
	// Output:
	// grpcauth.Config{Endpoint: "dns:///flyte.example.com:443", Insecure: false, InsecureSkipVerify: false, CACertFilePath: "", AuthType: "", ClientID: "my-client", ClientSecretLocation: "", ClientSecretEnvVar: "", Scopes: [], Audience: "", UseAudienceFromAdmin: false, TokenURL: "", AuthorizationHeader: "", HTTPProxyURL: "", Command: [], ProxyCommand: [], MaxMessageSizeBytes: 0, MaxRetries: 0, PerRetryTimeout: 0s, MaxBackoffDelay: 0s, DefaultServiceConfig: "", TokenRefreshWindow: 0s, PkceConfig.Timeout: 0s, PkceConfig.RefreshTime: 0s, DeviceFlowConfig.RefreshTime: 0s, DeviceFlowConfig.Timeout: 0s, DeviceFlowConfig.PollInterval: 0s, ConsoleEndpoint: "", ClientSecret: [REDACTED]}
}
