package authenticator

import (
	"context"
	"time"
)

// SetDeviceWait replaces the pause between two device polls of f, a flow
// of NewDeviceFlow, so that tests can see every interval the flow chose
// without waiting for it.
func SetDeviceWait(f Flow, wait func(ctx context.Context, d time.Duration) error) {
	f.(*deviceFlow).wait = wait
}

// SleepContext is the real pause between device polls.
var SleepContext = sleepContext

// SetDeviceRequestTimeout replaces the bound of each HTTP request of f, a
// flow of NewDeviceFlow (default DefaultTokenTimeout).
func SetDeviceRequestTimeout(f Flow, d time.Duration) {
	f.(*deviceFlow).requestTimeout = d
}
