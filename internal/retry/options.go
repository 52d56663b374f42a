package retry

import (
	"log/slog"
	"slices"

	"google.golang.org/grpc/codes"

	"github.com/flyteauth/grpcauth/authenticator"
	"github.com/flyteauth/grpcauth/internal/authmetarpc1"
	"github.com/flyteauth/grpcauth/internal/authmetarpc2"
)

// Options are the settings of an interceptor, gRPC's or connect-go's: one
// set, given with package interceptor's options.
type Options struct {
	// Insecure lets a credential go over a transport without security.
	Insecure bool
	// RefreshCodes are the codes that call for a new token.
	RefreshCodes []codes.Code
	// Skip holds the methods passed through untouched.
	Skip map[string]bool
	// MaxReplay bounds the messages a stream keeps for a replay.
	MaxReplay int
	// Logger receives debug and warn records.
	Logger *slog.Logger
	// OnRetry hears of each call sent again.
	OnRetry func(method string, code codes.Code)
}

// NewOptions returns the defaults with opts applied in order.
func NewOptions[O ~func(*Options)](opts []O) *Options {
	o := &Options{
		RefreshCodes: []codes.Code{codes.Unauthenticated},
		Skip: map[string]bool{
			// The anonymous metadata RPCs of Flyte 1 and Flyte 2: a config
			// store that shares the connection never recurses.
			authmetarpc1.GetOAuth2MetadataMethod:     true,
			authmetarpc1.GetPublicClientConfigMethod: true,
			authmetarpc2.GetOAuth2MetadataMethod:     true,
			authmetarpc2.GetPublicClientConfigMethod: true,
		},
		MaxReplay: DefaultMaxReplay,
		Logger:    slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// TokenPolicy is the OAuth2 token's policy: a new token when the server
// answers one of o.RefreshCodes, unless also(err) says otherwise (nil:
// always).
func TokenPolicy(a authenticator.Authenticator, o *Options, also func(error) bool) Policy {
	return Policy{
		Creds: a,
		Refused: func(_ Carried, c codes.Code, err error) bool {
			return slices.Contains(o.RefreshCodes, c) && (also == nil || also(err))
		},
		What:    "token",
		Logger:  o.Logger,
		OnRetry: o.OnRetry,
	}
}
