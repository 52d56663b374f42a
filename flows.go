package grpcauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/tokencache"
)

// pkceFlow is the browser login of authType Pkce: the client id from
// clientId, else the one FlyteAdmin advertises; the login bounded by
// pkceConfig.timeout; the browser opened where one can be, the URL always
// printed on stderr.
func (c Config) pkceFlow() (authenticator.Flow, error) {
	opts := []authenticator.PKCEOption{authenticator.WithBrowser(authenticator.OpenBrowser)}
	if id := strings.TrimSpace(c.ClientID); id != "" {
		opts = append(opts, authenticator.WithPKCEClientID(id))
	}
	if c.PkceConfig.Timeout > 0 {
		opts = append(opts, authenticator.WithLoginTimeout(c.PkceConfig.Timeout))
	}
	f, err := authenticator.NewPKCEFlow(opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: authType Pkce: %w", err)
	}
	return f, nil
}

// interactiveOptions are the Keeper options of a flow that asks a person:
// tokens kept in the file cache across processes, so that a login serves
// later processes too, and the flow section's refreshTime as the refresh
// margin when tokenRefreshWindow does not set one.
func (c Config) interactiveOptions(refreshTime time.Duration) ([]authenticator.Option, error) {
	cache, err := tokencache.NewFile()
	if err != nil {
		return nil, fmt.Errorf("grpcauth: token cache: %w", err)
	}
	o := []authenticator.Option{authenticator.WithCache(cache)}
	if c.TokenRefreshWindow == 0 && refreshTime > 0 {
		o = append(o, authenticator.WithRefreshMargin(refreshTime))
	}
	return o, nil
}
