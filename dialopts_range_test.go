package grpcauth_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth"
)

// A Config written in Go with a value out of range fails with the key's
// name, not deep inside gRPC.
func TestDialOptionsOutOfRange(t *testing.T) {
	_, err := grpcauth.Config{Endpoint: "x:1", MaxRetries: math.MaxInt64}.DialOptions()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "maxRetries")
	_, err = grpcauth.Config{Endpoint: "x:1", MaxMessageSizeBytes: math.MaxInt64}.DialOptions()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "maxMessageSizeBytes")
}
