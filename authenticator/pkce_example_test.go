package authenticator_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
	"github.com/flyteauth/grpcauth/tokencache"
)

// The browser login under a Keeper, with the file cache: the second Keeper
// takes the first one's token from the cache. A fake authorization server
// and a "browser" that follows its redirects stand in for the real ones;
// in a program, a loginui.Terminal with no Browser opens the system's
// browser and the store is a configstore.Remote.
func ExampleNewPKCEFlow() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	redirect := fmt.Sprintf("http://%s/callback", l.Addr())
	_ = l.Close()
	as, err := testserver.NewAuthorizationServer(testserver.WithPublicClient("flytectl", redirect))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer as.Close()
	store := configstore.NewStatic(configstore.ClientConfig{
		AuthorizationEndpoint: as.AuthorizeURL(),
		TokenEndpoint:         as.TokenURL(),
		ClientID:              "flytectl",
		RedirectURI:           redirect,
		Scopes:                []string{"openid", "offline"},
	})
	browser := &http.Client{}
	defer browser.CloseIdleConnections()
	flow, err := authenticator.NewPKCEFlow(authenticator.PKCEConfig{Prompter: &loginui.Terminal{
		Out: io.Discard, // the URL is printed here; default os.Stderr
		Browser: func(ctx context.Context, url string) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := browser.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "tokens-")
	defer os.RemoveAll(dir)
	cache, _ := tokencache.NewFile(tokencache.WithDir(dir))

	for range 2 {
		k, err := authenticator.New("dns:///flyte.example:443", store, flow, authenticator.WithCache(cache))
		if err != nil {
			fmt.Println(err)
			return
		}
		_, err = k.Token(context.Background())
		fmt.Printf("token: %v, from the cache: %d, browser logins so far: %d\n", err == nil, k.Stats().CacheHits, as.Authorizations())
		_ = k.Close()
	}
	// Output:
	// token: true, from the cache: 0, browser logins so far: 1
	// token: true, from the cache: 1, browser logins so far: 1
}
