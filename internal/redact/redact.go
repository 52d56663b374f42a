package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Marker replaces what was hidden. Being a constant, it is safe for
// concurrent use.
const Marker = "[REDACTED]"

// maxURL bounds the length of what URL returns, in bytes.
const maxURL = 256

// URL returns s with its user information ("alice:password@"), query and
// fragment replaced by Marker, control characters replaced and the result
// clipped to 256 bytes, so it can be shown in an error or a log line. It
// works on the text, not on a parsed URL, so unparsable input and forms
// without a scheme ("alice:pw@proxy:3128", "host:443", "dns:///host:443")
// are redacted too; a value without user information, query or fragment
// comes back unchanged.
func URL(s string) string {
	if s == "" {
		return ""
	}
	// The authority starts after "scheme://", or at the start for forms
	// without one. User information ends at the last "@": a password
	// pasted as it is may hold "/", "?" or "#", so any "@" counts, and a
	// path that holds one loses its host too (hidden rather than shown).
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	prefix := s[:start]
	rest := s[start:]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		prefix += Marker + "@"
		rest = rest[at+1:]
	}
	var suffix string
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		if rest[i] == '?' {
			suffix = "?" + Marker
		} else {
			suffix = "#" + Marker
		}
		rest = rest[:i]
	}
	return Clip(prefix+rest+suffix, maxURL)
}

// Clip returns s made printable and at most n bytes long, plus "…" when it
// was cut: invalid UTF-8 becomes U+FFFD, control characters and the
// invisible characters that reorder text (bidirectional controls) become a
// space, and the cut never splits a rune. A negative n counts as 0.
func Clip(s string, n int) string {
	n = max(n, 0)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n-- // cut between runes, so the text stays valid UTF-8
	}
	return s[:n] + "…"
}

// isBidiControl reports the format characters that change the display
// order of text, with which a value could disguise what it says.
func isBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// Argv returns argv for printing: its first word, and Marker in place of
// the arguments, which may hold a secret (a token, a password).
func Argv(argv []string) []string {
	if len(argv) <= 1 {
		return argv
	}
	return []string{argv[0], Marker}
}
