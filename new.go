package grpcauth

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/interceptor"
	"github.com/flyteauth/grpcauth/internal/lateconn"
	"github.com/flyteauth/grpcauth/internal/redact"
)

// Client is an authenticated connection to a Flyte deployment together
// with the parts New built for it: the Keeper (for Stats, its standard
// views and a token of your own), the proxy keeper and the config store.
// Its fields are set once by New; the values they point to are safe for
// concurrent use.
type Client struct {
	// Conn is the connection, with the interceptors installed.
	Conn *grpc.ClientConn
	// Authenticator keeps the token of the flow authType selects; nil
	// with AuthTypePassthrough.
	Authenticator *authenticator.Keeper
	// Proxy keeps the proxy token of proxyCommand; nil without one.
	Proxy *authenticator.Keeper
	// ConfigStore tells the Keeper what the Config does not name: the
	// deployment's AuthMetadataService over Conn, asked only for what is
	// missing, or a static store when the Config names everything; nil
	// with AuthTypePassthrough.
	ConfigStore configstore.ClientConfigStore
	// InterceptorOptions are the options the interceptors were built
	// with (the Config's, then the caller's), for interceptors of your own
	// such as connectauth's.
	InterceptorOptions []interceptor.Option

	parts *parts
}

// Close closes the connection and ends the keepers: a token request in
// flight or a background refresh stops promptly, and nothing New started
// keeps running. It is safe to call more than once and for concurrent use.
func (c *Client) Close() error {
	c.parts.close()
	if err := c.Conn.Close(); status.Code(err) != codes.Canceled {
		return err
	}
	return nil // closed already
}

// NewClient returns the connection of New without its parts; closing the
// connection ends them shortly after, as Client.Close does at once.
func NewClient(cfg Config, opts ...Option) (*grpc.ClientConn, error) {
	c, err := New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	go func() {
		// The connection is all the caller has: its shutdown ends the
		// keepers, the telemetry and the rest.
		for s := c.Conn.GetState(); s != connectivity.Shutdown; s = c.Conn.GetState() {
			c.Conn.WaitForStateChange(context.Background(), s)
		}
		c.parts.close()
	}()
	return c.Conn, nil
}

// New builds an authenticated connection to the Flyte deployment cfg
// describes, for every authType: client credentials (ClientSecret), the
// browser login (Pkce), the device code (DeviceFlow), an external
// command (ExternalCommand), and none but the headers each call's caller
// sets (Passthrough: metadata.AppendToOutgoingContext); without authType and clientId, flytekit's
// default, the browser login with the public client id the deployment
// advertises, started only when a server rejects a call, so that an open
// server costs no login. With proxyCommand, its token goes as
// proxy-authorization on every call (AuthMetadataService's included) and
// every token request.
//
// It does no network I/O: grpc.NewClient connects on the first call, and
// AuthMetadataService (on the same connection, its two RPCs anonymous) is
// asked at the first token request, and only for what cfg does not name:
// tokenUrl, scopes, audience and authorizationHeader win over what the
// deployment advertises. With a flow chosen, the first call already
// carries a token. The connection's security comes from TransportCredentials
// and its defaults from DialOptions; opts come after them (see Option).
//
// New, connectauth.New and every grpcauth command build their parts the
// same way, so a key means the same everywhere.
func New(cfg Config, opts ...Option) (*Client, error) {
	o := newOptions(opts)
	target, err := cfg.Target()
	if err != nil {
		return nil, err
	}
	creds, err := cfg.TransportCredentials()
	if err != nil {
		return nil, err
	}
	defaults, err := cfg.DialOptions()
	if err != nil {
		return nil, err
	}
	// The store needs the connection, the connection needs the
	// interceptors, and they need the Keeper, which needs the store: the
	// store gets a forwarder, pointed at the connection once it exists. No
	// call reaches the forwarder before: the store is asked at the first
	// token request, from a call on the connection.
	late := new(lateconn.Conn)
	var meta grpc.ClientConnInterface = late
	if o.metaVia != nil {
		meta = o.metaVia(late)
	}
	p, err := build(cfg, o, meta)
	if err != nil {
		return nil, err
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, defaults...)
	dial = append(dial, p.interceptors()...)
	p.dial = append(dial, o.dial...)
	cc, err := grpc.NewClient(target, p.dial...)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("grpcauth: dialing %s: %w", redact.URL(target), err)
	}
	late.Set(cc)
	return &Client{Conn: cc, Authenticator: p.keeper, Proxy: p.proxy, ConfigStore: p.store, InterceptorOptions: p.iopts, parts: p}, nil
}

// Dial opens a connection to another endpoint of the same deployment, such
// as a Flyte 2 data plane (its public client config's dataplane_domain),
// with c's security, dial options and interceptors: it shares c's keepers,
// so both connections carry the same token, and a rejection on either
// refreshes it once for both. endpoint is "host:port" or
// "dns:///host:port". opts come after c's. The caller closes the
// connection; c's Close ends the keepers it uses. It does no network I/O.
func (c *Client) Dial(endpoint string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	target, err := Config{Endpoint: endpoint}.Target()
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(target, append(slices.Clone(c.parts.dial), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcauth: dialing %s: %w", redact.URL(target), err)
	}
	return cc, nil
}
