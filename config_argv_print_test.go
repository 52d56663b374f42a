package grpcauth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/flyteconfig"
)

// The arguments of command and proxyCommand may hold a secret: no printer
// shows them, only the command's first word.
func TestPrintConfigHidesCommandArguments(t *testing.T) {
	cfg := grpcauth.Config{Endpoint: "dns:///x:443", ClientSecret: "S3CRET",
		Command:      []string{"get-token", "--password=PW-SECRET"},
		ProxyCommand: []string{"get-iap-token", "--refresh-token=RT-SECRET"}}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "cfg", cfg)
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	l := &flyteconfig.Loaded{Config: cfg}
	printed := []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", &cfg), string(b), logs.String(), fmt.Sprint(l), fmt.Sprint(l.Settings())}
	for _, p := range printed {
		for _, secret := range []string{"S3CRET", "PW-SECRET", "RT-SECRET"} {
			assert.NotContains(t, p, secret)
		}
	}
	assert.Contains(t, string(b), "get-iap-token", "the command's first word is shown")
}
