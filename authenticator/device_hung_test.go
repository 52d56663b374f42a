package authenticator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/loginui"
)

// A device authorization endpoint that accepts the connection and never
// answers costs one request timeout, not the login (issue 23, item 5): the
// request is made with the flow's context.
func TestDeviceAuthorizationEndpointThatNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })

	f, err := authenticator.NewDeviceFlow(authenticator.DeviceConfig{ClientID: "cli", AuthorizationURL: hung.URL + "/device", Prompter: &loginui.Terminal{Out: new(discard)}})
	require.NoError(t, err)
	authenticator.SetDeviceRequestTimeout(f, 300*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := f.Token(context.Background(), &configstore.ClientConfig{TokenEndpoint: hung.URL + "/token"}, nil)
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		require.Contains(t, err.Error(), "device authorization")
	case <-time.After(10 * time.Second):
		t.Fatal("the device login waits on an endpoint that never answers")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
