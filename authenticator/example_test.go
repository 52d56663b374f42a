package authenticator_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
)

func ExampleNewClientCredentialsAuthenticator() {
	// A local OAuth2 token endpoint that knows one client.
	tokens, err := testserver.NewTokenServer(testserver.WithClient("my-client", "my-secret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tokens.Close()

	// The store says where to get tokens; against FlyteAdmin it would be a
	// configstore.Remote asking the server itself.
	store := configstore.NewStatic(configstore.ClientConfig{
		TokenEndpoint: tokens.TokenURL(),
		Scopes:        []string{"all"},
	})
	auth, err := authenticator.NewClientCredentialsAuthenticator("dns:///admin.example:443", "my-client", "my-secret", store)
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	if err := auth.RefreshCredentials(ctx); err != nil {
		fmt.Println(err)
		return
	}
	key, value, ok := credOK(auth.Credential(ctx))
	fmt.Println("ok:", ok)
	fmt.Println("key:", key)
	fmt.Println("bearer:", strings.HasPrefix(value, "Bearer "))
	// Output:
	// ok: true
	// key: authorization
	// bearer: true
}
