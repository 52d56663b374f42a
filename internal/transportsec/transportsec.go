// Package transportsec is the one place that decides whether a gRPC
// transport may carry a bearer token. The interceptors and the
// PerRPCCredentials view of an authenticator both ask it, for the transport
// that each call actually uses (per-RPC credentials see that transport's
// AuthInfo), never for a connection as a whole: one ClientConn can hold TLS
// and plaintext subconnections.
//
// A transport is secure when it offers privacy and integrity (TLS, ALTS),
// or when it is local (credentials/local: loopback or a Unix socket), the
// rule of grpc-go's credentials.CheckSecurityLevel at PrivacyAndIntegrity
// plus local credentials. Anything else needs the caller's explicit opt-in
// (Flyte's insecure: true).
package transportsec

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc/credentials"
)

// Secure reports whether a transport with AuthInfo ai offers privacy and
// integrity, or is local.
func Secure(ai credentials.AuthInfo) bool {
	if ai == nil {
		return false
	}
	if ai.AuthType() == "local" {
		return true
	}
	ci, ok := ai.(interface {
		GetCommonAuthInfo() credentials.CommonAuthInfo
	})
	return ok && ci.GetCommonAuthInfo().SecurityLevel == credentials.PrivacyAndIntegrity
}

// SecureContext reports whether the transport of the call whose per-RPC
// credentials are being asked for (ctx as given to GetRequestMetadata) is
// secure, and the call's method for messages.
func SecureContext(ctx context.Context) (secure bool, method string) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	return Secure(ri.AuthInfo), ri.Method
}

// LoopbackHost reports whether host (a URL's Hostname) is localhost or a
// loopback address: the one kind of host to which plain http:// may carry a
// credential without the caller's opt-in, since the traffic never leaves
// the machine.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
