package authenticator

import (
	"context"
	"time"
)

// SetDeviceWait replaces the pause between two device polls, so that tests
// can see every interval the flow chose without waiting for it.
func SetDeviceWait(f *DeviceCodeFlow, wait func(ctx context.Context, d time.Duration) error) {
	f.wait = wait
}

// SleepContext is the real pause between device polls.
var SleepContext = sleepContext

// SetDeviceRequestTimeout replaces the bound of each HTTP request of the
// device flow (default DefaultTokenTimeout).
func SetDeviceRequestTimeout(f *DeviceCodeFlow, d time.Duration) {
	f.requestTimeout = d
}
