// Package redact makes text safe to show: URLs lose their user
// information, query and fragment (where credentials and tokens hide), and
// clipped text stays valid UTF-8 without control characters. It is the one
// place the module decides how a URL or an untrusted value is printed in an
// error, a log line, String() or the command-line tool's output.
package redact
