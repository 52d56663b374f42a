package redact_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/flyteauth/grpcauth/internal/redact"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"http://alice:password@proxy:3128", "http://[REDACTED]@proxy:3128"},
		{"http://alice@proxy:3128/", "http://[REDACTED]@proxy:3128/"},
		{"https://idp.example/token?client_secret=s3cr3t", "https://idp.example/token?[REDACTED]"},
		{"https://idp.example/token#access_token=t0k3n", "https://idp.example/token#[REDACTED]"},
		// An "@" in the path could end a password that holds "/": all of
		// it up to the last "@" is hidden.
		{"https://a:b@idp.example/p@th?x=1#y", "https://[REDACTED]@th?[REDACTED]"},
		{"https://app:s3cr/et+Zz==@host", "https://[REDACTED]@host"},
		{"https://app:s3cr?et@host", "https://[REDACTED]@host"},
		{"https://app:s3cr#et@host/p", "https://[REDACTED]@host/p"},
		{"grpcs://u:p/w@host:443", "grpcs://[REDACTED]@host:443"},
		{"https://a@b@idp.example", "https://[REDACTED]@idp.example"},
		{"alice:pw@proxy:3128", "[REDACTED]@proxy:3128"},
		{"host:443", "host:443"},
		{"dns:///flyte.example:443", "dns:///flyte.example:443"},
		{"https://idp.example/oauth2/token", "https://idp.example/oauth2/token"},
		{"http://[::1]:8080/x", "http://[::1]:8080/x"},
		{"%zz://u:p@h", "%zz://[REDACTED]@h"},
		{"http://h/\x1b[31mred", "http://h/ [31mred"},
	} {
		assert.Equal(t, tc.want, redact.URL(tc.in), "URL(%q)", tc.in)
	}
}

func TestURLIsBounded(t *testing.T) {
	long := "https://" + strings.Repeat("é", 500) + ".example/"
	got := redact.URL(long)
	assert.LessOrEqual(t, len(got), 256+len("…"))
	assert.True(t, utf8.ValidString(got))
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456789…"},
		{"ééééé", 3, "é…"}, // never half a rune
		{"a\nb\tc\x00d\x7f", 20, "a b c d "},
		{"bad\xffutf8", 20, "bad\ufffdutf8"},
		{"evil\u202egnp.exe", 20, "evil gnp.exe"},
		{"x", -1, "…"},
	} {
		got := redact.Clip(tc.in, tc.n)
		assert.Equal(t, tc.want, got, "Clip(%q, %d)", tc.in, tc.n)
		assert.True(t, utf8.ValidString(got))
	}
}

func FuzzClip(f *testing.F) {
	f.Add("https://u:p@h/x?y", 10)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 1000
		got := redact.Clip(s, n)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
		if len(got) > max(n, 0)+len("…") {
			t.Fatalf("%d bytes for n=%d", len(got), n)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", got)
			}
		}
		u := redact.URL(s)
		if !utf8.ValidString(u) {
			t.Fatalf("URL: invalid UTF-8: %q", u)
		}
	})
}
