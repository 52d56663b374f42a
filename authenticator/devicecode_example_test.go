package authenticator_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/testserver"
	"github.com/flyteauth/grpcauth/loginui"
)

// approver stands for the person: it reads the prompt and approves the
// code on the server, as they would on their phone.
type approver struct{ srv *testserver.DeviceServer }

func (a approver) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "To sign in") {
		codes := a.srv.UserCodes()
		_ = a.srv.Approve(codes[len(codes)-1])
	}
	return len(p), nil
}

// A device login under a Keeper: the first token request shows the
// person a URL and a code (a loginui.Terminal writes them to stderr by
// default) and waits for their approval; later calls use the token, and its refresh token once it
// expires. FlyteAdmin's config store would name the device authorization
// endpoint and the public client; a static one does here.
func ExampleNewDeviceFlow() {
	srv, err := testserver.NewDeviceServer(testserver.WithDeviceClient("flytectl"), testserver.WithDeviceInterval(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	store := configstore.NewStatic(configstore.ClientConfig{
		TokenEndpoint:               srv.TokenURL(),
		DeviceAuthorizationEndpoint: srv.DeviceAuthorizationURL(),
		ClientID:                    "flytectl",
		Scopes:                      []string{"offline", "all"},
	})

	flow, err := authenticator.NewDeviceFlow(authenticator.DeviceConfig{
		Prompter: &loginui.Terminal{Out: approver{srv}},
		Timeout:  time.Minute,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	keeper, err := authenticator.New("dns:///flyte.example:443", store, flow)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer keeper.Close()

	tok, err := keeper.Token(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("signed in:", tok.AccessToken != "")
	fmt.Println("logins:", srv.Authorizations())
	// Output:
	// signed in: true
	// logins: 1
}
