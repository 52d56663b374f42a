package grpcauth_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// Example dials an in-process FlyteAdmin over TLS with client credentials
// and makes one call. With a real deployment, flyteconfig.Load reads
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

// ExampleConfig_Format shows that printing a Config never shows the
// secret, whatever the verb.
func ExampleConfig_Format() {
	cfg := grpcauth.Config{Endpoint: "dns:///flyte.example.com:443", ClientID: "my-client", ClientSecret: "hunter2"}
	fmt.Printf("%+v\n", cfg)
	fmt.Printf("%d\n", cfg)
	// Output:
	// grpcauth.Config{Endpoint:dns:///flyte.example.com:443 Insecure:false InsecureSkipVerify:false CACertFilePath: AuthType: ClientID:my-client ClientSecretLocation: ClientSecretEnvVar: Scopes:[] Audience: AudienceParam: UseAudienceFromAdmin:false TokenURL: AuthorizationHeader: HTTPProxyURL: Command:[] ProxyCommand:[] MaxMessageSizeBytes:0 MaxRetries:0 PerRetryTimeout:0s MaxBackoffDelay:0s DefaultServiceConfig: TokenRefreshWindow:0s TokenCache: PkceConfig:{Timeout:0s RefreshTime:0s AuthParams:[] CallbackPage:} DeviceFlowConfig:{RefreshTime:0s Timeout:0s PollInterval:0s} ConsoleEndpoint: ClientSecret:[REDACTED]}
	// grpcauth.Config{dns:///flyte.example.com:443 false false   my-client   []   false    [] [] 0 0 0s 0s  0s  {0s 0s [] } {0s 0s 0s}  [REDACTED]}
}
