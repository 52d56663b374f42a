package loginui_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/flyteauth/grpcauth/loginui"
)

// A Browser hook that returns ctx.Err() because the login ended (as the
// Browser field's doc asks it to) is not a browser that failed to open.
func TestBrowseAfterTheLoginEnded(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	term := &loginui.Terminal{Out: &out, Browser: func(ctx context.Context, _ string) error {
		cancel() // the login ends while the browser is still opening
		<-ctx.Done()
		return ctx.Err()
	}}
	term.Browse(ctx, "https://idp.example/authorize?state=s")
	assert.NotContains(t, out.String(), "Could not open a browser")
}
