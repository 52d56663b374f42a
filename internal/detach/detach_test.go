package detach_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/detach"
)

func TestCallReturnsWhatOpReturns(t *testing.T) {
	v, err := detach.Call(t.Context(), func() (int, error) { return 7, nil })
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	boom := errors.New("boom")
	_, err = detach.Call(t.Context(), func() (int, error) { return 0, boom })
	assert.ErrorIs(t, err, boom)
}

// A call that never ends does not hold its caller past the context; it
// ends on its own later.
func TestCallStopsWaitingAtTheContext(t *testing.T) {
	release, ended := make(chan struct{}), make(chan struct{})
	why := errors.New("gave up")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(why)
	_, err := detach.Call(ctx, func() (string, error) {
		defer close(ended)
		<-release
		return "late", nil
	})
	assert.ErrorIs(t, err, why)
	close(release)
	<-ended
}
