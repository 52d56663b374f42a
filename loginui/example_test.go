package loginui_test

import (
	"context"
	"os"

	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/loginui"
)

// A Terminal shows what a person must do to log in. A program gives it to
// authenticator.NewPKCEFlow or authenticator.NewDeviceFlow as the
// Prompter; here it is called directly. Out is os.Stderr by default, and a
// browser login opens the system's browser unless NoBrowser is set (as over
// SSH). What the server chose is printed without control characters.
func ExampleTerminal() {
	term := &loginui.Terminal{Out: os.Stdout, NoBrowser: true}
	ctx := context.Background()

	term.Browse(ctx, "https://idp.example/authorize?client_id=flytectl&state=xyz")
	term.LoggedIn(ctx)

	term.DeviceCode(ctx, &oauth2.DeviceAuthResponse{
		UserCode:        "WDJB-MJHT\x1b[2J",
		VerificationURI: "https://idp.example/device",
	})
	term.LoggedIn(ctx)
	// Output:
	// Log in with your browser at this URL (it opens by itself where it can):
	//
	//   https://idp.example/authorize?client_id=flytectl&state=xyz
	//
	// Waiting for the login ...
	// Logged in.
	// To sign in, open this page in a browser on any device:
	//
	//     https://idp.example/device
	//
	// and enter the code:
	//
	//     WDJB-MJHT [2J
	//
	// Waiting for approval.
	// Logged in.
}
