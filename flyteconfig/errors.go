package flyteconfig

import (
	"fmt"
	"strings"
)

// Error reports a config file, environment variable or flag whose
// value cannot be used. Its text names the source and the key, never a
// secret. It is a plain value, safe for concurrent use.
type Error struct {
	// Source is the file path, "env NAME" or "flag --name".
	Source string
	// Key is the key's path, such as "admin.insecure"; "" when the whole
	// file is at fault.
	Key string
	// Line is the line in the file, or 0.
	Line int
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any, such as the YAML parser's or
	// the file system's.
	Err error
}

// Error reads "source: key: message (line n)". It is safe for concurrent
// use.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Unwrap returns the underlying error. It is safe for concurrent use.
func (e *Error) Unwrap() error { return e.Err }
