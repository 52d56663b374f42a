package connectauth_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"connectrpc.com/connect"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/connectauth"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb"
	"github.com/flyteauth/grpcauth/internal/testserver/flyte2pb/flyte2pbconnect"
)

// Example authenticates a connect-go client of an in-process Flyte 2
// backend from a Flyte config: the token endpoint comes from the backend's
// flyteidl2.auth.AuthMetadataService, and the generated client is built in
// one line. With a real deployment, flyteconfig.Load reads the same
// settings from ~/.flyte/config.yaml, and the generated client is, say,
// workflowconnect.NewRunServiceClient.
func Example() {
	ca, err := testserver.NewCA()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "connectauth-example")
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
	flyte2, err := testserver.NewConnectServer(testserver.WithConnectTLS(ca), testserver.WithConnectValidator(tokens),
		testserver.WithFlyte2Metadata(&flyte2pb.GetOAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}))
	if err != nil {
		log.Fatal(err)
	}
	defer flyte2.Close()

	cfg := grpcauth.Config{
		Endpoint:       flyte2.Addr(), // "dns:///flyte.example.com:443" in real life
		CACertFilePath: caFile,
		ClientID:       "my-client",
		ClientSecret:   "my-secret",
	}
	c, err := connectauth.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	echo := flyte2pbconnect.NewEchoServiceClient(c.HTTPClient, c.BaseURL, c.Options...)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := echo.Echo(ctx, connect.NewRequest(&flyte2pb.EchoRequest{Value: "hello, Flyte 2"}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.Msg.GetValue())
	fmt.Println("token requests:", tokens.Issued())
	// Output:
	// hello, Flyte 2
	// token requests: 1
}
