package configstore_test

import (
	"context"
	"fmt"
	"log"

	"google.golang.org/grpc"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/proto/authmetapb"
)

// ExampleNewRemote assembles an authenticated connection by hand: the
// Remote store asks AuthMetadataService over a connection of its own,
// without interceptors (its RPCs are anonymous), and the Keeper's tokens
// ride on another. grpcauth.New does this on one connection.
func ExampleNewRemote() {
	// An OAuth2 token endpoint, and a FlyteAdmin stand-in that serves TLS,
	// advertises that endpoint and accepts only its tokens.
	tokens, err := testserver.NewTokenServer(testserver.WithClient("my-client", "my-secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer tokens.Close()
	ca, err := testserver.NewCA()
	if err != nil {
		log.Fatal(err)
	}
	admin, err := testserver.NewAdminServer(
		testserver.WithAdminTLS(ca),
		testserver.WithValidator(tokens),
		testserver.WithOAuth2Metadata(&authmetapb.OAuth2MetadataResponse{TokenEndpoint: tokens.TokenURL()}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()

	meta, err := grpc.NewClient(admin.Addr(), admin.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer meta.Close()
	store, err := configstore.NewRemote(meta)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := authenticator.NewClientCredentialsAuthenticator(admin.Addr(), "my-client", "my-secret", store)
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	// admin.DialOptions() holds the in-memory dialer and TLS credentials
	// trusting the test CA.
	conn, err := grpc.NewClient(admin.Addr(), append([]grpc.DialOption{
		grpc.WithChainUnaryInterceptor(interceptor.UnaryClientInterceptor(auth)),
		grpc.WithChainStreamInterceptor(interceptor.StreamClientInterceptor(auth)),
	}, admin.DialOptions()...)...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	reply, err := testserver.NewEchoClient(conn).Unary(context.Background(), "hello")
	if err != nil {
		log.Fatal(err)
	}
	oauth2Calls, publicCalls := admin.MetadataCalls()
	fmt.Printf("%s: %d echo attempt, %d token request, metadata RPCs %d+%d, anonymous: %t\n",
		reply, admin.EchoCalls(), tokens.Requests(), oauth2Calls, publicCalls, !admin.MetadataRPCsSawToken())
	// Output:
	// hello: 1 echo attempt, 1 token request, metadata RPCs 1+1, anonymous: true
}
