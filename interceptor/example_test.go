package interceptor_test

import (
	"context"
	"fmt"
	"log"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

// Example installs both interceptors on a connection to a protected
// service. The authenticator fetches its first token when the first call
// asks for it; every call carries it from the start, and a rejected one
// would be sent again once with a fresh token.
func Example() {
	// An OAuth2 token endpoint, and a FlyteAdmin stand-in that serves TLS
	// and accepts only the tokens that endpoint issued.
	tokens, err := testserver.NewTokenServer(testserver.WithClient("my-client", "my-secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer tokens.Close()
	ca, err := testserver.NewCA()
	if err != nil {
		log.Fatal(err)
	}
	admin, err := testserver.NewAdminServer(testserver.WithAdminTLS(ca), testserver.WithValidator(tokens))
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()

	// The authenticator; here the token endpoint is known up front.
	store := configstore.NewStatic(configstore.ClientConfig{TokenEndpoint: tokens.TokenURL()})
	auth, err := authenticator.NewClientCredentialsAuthenticator(admin.Addr(), "my-client", "my-secret", store)
	if err != nil {
		log.Fatal(err)
	}

	// admin.DialOptions() holds the in-memory dialer and TLS credentials
	// trusting the test CA.
	conn, err := grpc.NewClient(admin.Addr(), append([]grpc.DialOption{
		grpc.WithUnaryInterceptor(interceptor.UnaryClientInterceptor(auth)),
		grpc.WithStreamInterceptor(interceptor.StreamClientInterceptor(auth)),
	}, admin.DialOptions()...)...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	echo := testserver.NewEchoClient(conn)
	for _, msg := range []string{"hello", "again"} {
		reply, err := echo.Unary(context.Background(), msg)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d attempts so far, %d token request\n", reply, admin.EchoCalls(), tokens.Requests())
	}
	// Output:
	// hello: 1 attempts so far, 1 token request
	// again: 2 attempts so far, 1 token request
}
