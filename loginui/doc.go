// Package loginui is what a person sees of an interactive login: the
// prompts, the QR code, the browser opener and the page the browser shows
// at the end of a browser login. It keeps all of that out of the token
// core: package authenticator's flows (NewPKCEFlow, NewDeviceFlow) take an
// authenticator.Prompter, and Terminal is the one a command-line program
// wants.
//
// Terminal writes to standard error (or any writer) and never to a log.
// Every string a server chose (an authorization URL, a verification URL, a
// user code, an error description) is cleaned of control characters and of
// the invisible characters that reorder text before it is shown, so that a
// hostile server cannot drive the terminal with escape sequences or
// disguise what a URL says; the callback page escapes it as HTML.
//
// OpenBrowser opens a URL in the desktop's browser without a shell; it is
// Terminal's default.
package loginui
