package authenticator

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A first caller of Credential that saw no token (current.Load() == nil)
// but reaches refresh after another caller's first token arrived must
// take that token, not ask the flow again.
func TestLateFirstUseCallerMakesNoSecondRequest(t *testing.T) {
	_, ts, a := newInternalPair(t, 0) // a token is held
	held := a.current.Load()
	ts.ResetCounters()

	c, err := a.refresh(context.Background(), nil, causeFirstUse)
	require.NoError(t, err)
	assert.Same(t, held, c, "the token already held")
	assert.Zero(t, ts.Requests(), "no second first-use request")
}
