package nilcheck

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

type impl struct{}

func (*impl) Do(context.Context) {}

type doer interface{ Do(context.Context) }

func TestNil(t *testing.T) {
	var nilPtr *impl
	var d doer = nilPtr
	assert.True(t, Nil(nil))
	assert.True(t, Nil(d), "an interface holding a nil pointer")
	assert.True(t, Nil(map[string]int(nil)))
	assert.False(t, Nil(&impl{}))
	assert.False(t, Nil(42))
}
