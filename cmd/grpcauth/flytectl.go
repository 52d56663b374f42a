package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/flyteauth/grpcauth/internal/detach"
	"github.com/flyteauth/grpcauth/internal/tokentext"
)

// flytectl keeps its browser login in the OS keyring: service "flytectl",
// user "<admin.endpoint>:flytectl-user", the token as JSON (golang.org/x/
// oauth2's field names).
const (
	flytectlService  = "flytectl"
	flytectlUserTail = ":flytectl-user"
	// flytectlWait bounds the keyring read: a locked keyring would ask a
	// person.
	flytectlWait = 5 * time.Second
)

// flytectlLogin returns the login flytectl keeps for endpoint (as flytectl
// spells it, dns:///host:port, or as given), if it can still serve: an
// access token that has not expired, or a refresh token.
func flytectlLogin(endpoint string) (*oauth2.Token, error) {
	e := strings.TrimSpace(endpoint)
	users := []string{e + flytectlUserTail}
	if !strings.Contains(e, "://") {
		users = append([]string{"dns:///" + e + flytectlUserTail}, users...)
	}
	var lastErr error
	for _, user := range users {
		text, err := keyringGet(flytectlService, user)
		if errors.Is(err, keyring.ErrNotFound) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the OS keyring could not be read: %w", err)
		}
		var tok oauth2.Token
		if len(text) > 64<<10 {
			return nil, errors.New("flytectl's keyring item is larger than a login (64 KiB): not taken")
		}
		if err := json.Unmarshal([]byte(text), &tok); err != nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
			return nil, errors.New("flytectl's keyring item holds no token this version can read")
		}
		if !tokentext.Valid(tok.AccessToken) || !tokentext.Valid(tok.RefreshToken) {
			return nil, errors.New("flytectl's keyring item holds a token with spaces, control or non-ASCII characters: not taken")
		}
		if tok.RefreshToken == "" && !tok.Expiry.IsZero() && !tok.Expiry.After(time.Now()) {
			return nil, errors.New("flytectl's login has expired and has no refresh token: log in again, with grpcauth login")
		}
		return &tok, nil
	}
	return nil, fmt.Errorf("flytectl keeps no login for %s in the OS keyring (%v)", endpoint, lastErr)
}

// keyringGet reads an item, bounded by flytectlWait.
func keyringGet(service, user string) (string, error) {
	ctx, cancel := context.WithTimeoutCause(context.Background(), flytectlWait, fmt.Errorf("no answer within %s", flytectlWait))
	defer cancel()
	return detach.Call(ctx, func() (string, error) { return keyring.Get(service, user) })
}
