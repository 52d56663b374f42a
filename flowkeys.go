package grpcauth

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// oauthKeys are read by every OAuth2 flow: client credentials, PKCE and
// the device flow.
var oauthKeys = []string{"clientId", "scopes", "audience", "useAudienceFromAdmin", "tokenUrl", "tokenRefreshWindow"}

// flowKeys lists, for each flow, the keys only some flows read.
var flowKeys = map[string][]string{
	AuthTypeClientSecret:    append(slices.Clone(oauthKeys), "clientSecretLocation", "clientSecretEnvVar", ClientSecretKey),
	AuthTypePkce:            append(slices.Clone(oauthKeys), "pkceConfig.timeout", "pkceConfig.refreshTime"),
	AuthTypeDeviceFlow:      append(slices.Clone(oauthKeys), "deviceFlowConfig.refreshTime", "deviceFlowConfig.timeout", "deviceFlowConfig.pollInterval"),
	AuthTypeExternalCommand: {"command"},
}

// Flow returns the canonical name of the flow c selects (AuthTypeClientSecret,
// AuthTypePkce, AuthTypeDeviceFlow or AuthTypeExternalCommand), whether
// this module supports it yet or not; "" when c names none (no authType
// and no clientId: New then logs in through the browser, Pkce with the
// public client id FlyteAdmin advertises, once a server asks for a
// token); and an error for an
// authType no Flyte client knows. It is safe for concurrent use with other
// reads of c.
func (c Config) Flow() (string, error) {
	t := strings.TrimSpace(c.AuthType)
	if t == "" {
		if strings.TrimSpace(c.ClientID) == "" {
			return "", nil
		}
		return AuthTypeClientSecret, nil
	}
	canon, ok := authAliases[strings.ToLower(t)]
	if !ok {
		return "", fmt.Errorf("grpcauth: unknown authType %q: want ClientSecret, Pkce, DeviceFlow or ExternalCommand", clip(t))
	}
	return canon, nil
}

// UnusedKeys says which keys are set (by a file, the environment, a flag
// or in Go, not by default) although the flow c selects does not read
// them, such as clientSecretLocation with authType Pkce, one sentence
// each, in the order of Keys. It says nothing when authType is unknown. It
// is safe for concurrent use with other reads of c.
func (c Config) UnusedKeys() []string {
	flow, err := c.Flow()
	if err != nil {
		return nil
	}
	used := flowKeys[cmp.Or(flow, AuthTypePkce)]
	var out []string
	for _, key := range Keys() {
		if !flowOnly(key) || slices.Contains(used, key) {
			continue
		}
		src := c.Source(key)
		if src == SourceDefault {
			continue
		}
		if flow == "" {
			out = append(out, fmt.Sprintf("%s is set (%s) but no authType is set, so the default browser login (Pkce) does not read it", key, src))
		} else {
			out = append(out, fmt.Sprintf("%s is set (%s) but authType %s does not read it", key, src, flow))
		}
	}
	return out
}

// flowOnly reports whether only some flows read key.
func flowOnly(key string) bool {
	for _, keys := range flowKeys {
		if slices.Contains(keys, key) {
			return true
		}
	}
	return false
}

// CheckFlow returns the error New would return for c's authType and
// proxyCommand (unknown, or not supported yet: matched with
// ErrUnsupported), or nil. It reads no file and does no I/O. It is safe
// for concurrent use with other reads of c.
func (c Config) CheckFlow() error {
	_, err := c.authMode()
	return err
}
