package testserver

import (
	"bytes"
	"log/slog"
	"sync"
)

// LogBuffer collects log output written from many goroutines, for tests
// that check what the library logged (never a secret, never a token). It is
// safe for concurrent use; the zero value is ready to use.
type LogBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Cap returns the bytes b holds on to: a test that measures the heap
// leaves them out.
func (b *LogBuffer) Cap() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Cap()
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a logger that writes JSON lines of every level, debug
// included, into b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
