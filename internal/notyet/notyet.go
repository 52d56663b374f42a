// Package notyet holds the one error that lets a call go out without a
// credential: the source has none yet, and waits for a server to ask for
// one (the lazily started login of the default flow, which runs only when
// a server turns out to want a token). Any other failure to get a
// credential ends the call unsent, with that failure as its error.
package notyet

import "errors"

// Err is wrapped by the error of a credential source that has no
// credential yet and was not asked to get one.
var Err = errors.New("no token yet")
