// Package tokentext tells whether a token that came from outside (a
// command's output, another tool's keyring item) can travel as a bearer
// token in a header or a form.
package tokentext

// Valid reports whether s is printable ASCII without spaces ("" too).
func Valid(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
