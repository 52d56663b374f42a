package authenticator

import (
	"net/http"

	"github.com/flyteauth/grpcauth/internal/netconf"
)

// newHTTPClient returns the one client that makes the token requests.
func newHTTPClient(o *options) *http.Client {
	if o.httpClient != nil {
		return o.httpClient
	}
	return &http.Client{
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: netconf.NoRedirects,
	}
}
