package transportsec

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/credentials"
)

// authInfo is a transport's AuthInfo with a given type and security level.
type authInfo struct {
	kind  string
	level credentials.SecurityLevel
}

func (a authInfo) AuthType() string { return a.kind }
func (a authInfo) GetCommonAuthInfo() credentials.CommonAuthInfo {
	return credentials.CommonAuthInfo{SecurityLevel: a.level}
}

// bare is an AuthInfo that says nothing of its security level.
type bare struct{}

func (bare) AuthType() string { return "custom" }

func TestSecure(t *testing.T) {
	for _, tt := range []struct {
		name string
		ai   credentials.AuthInfo
		want bool
	}{
		{name: "no AuthInfo (plaintext)", ai: nil},
		{name: "TLS", ai: authInfo{kind: "tls", level: credentials.PrivacyAndIntegrity}, want: true},
		{name: "ALTS", ai: authInfo{kind: "alts", level: credentials.PrivacyAndIntegrity}, want: true},
		{name: "integrity only", ai: authInfo{kind: "x", level: credentials.IntegrityOnly}},
		{name: "no security", ai: authInfo{kind: "insecure", level: credentials.NoSecurity}},
		{name: "local, whatever its level", ai: authInfo{kind: "local", level: credentials.NoSecurity}, want: true},
		{name: "a level it does not tell", ai: bare{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Secure(tt.ai))
			ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: "/s/m", AuthInfo: tt.ai})
			secure, method := SecureContext(ctx)
			assert.Equal(t, tt.want, secure)
			assert.Equal(t, "/s/m", method)
		})
	}
	secure, _ := SecureContext(context.Background())
	assert.False(t, secure, "a context without request info is not secure")
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.3.4.5": true, "::1": true,
		"": false, "10.0.0.1": false, "flyte.example": false, "localhost.example": false, "::": false,
	} {
		assert.Equal(t, want, LoopbackHost(host), host)
	}
}
