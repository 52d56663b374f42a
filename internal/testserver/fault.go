package testserver

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Fault lets a test break the TokenServer. Installed with
// TokenServer.SetFault, it sees every request before the token endpoint
// does; returning true means it answered (or deliberately did not answer)
// the request, false passes the request on. The request's form is already
// parsed, and its context also ends when the server closes. A Fault must be
// safe for concurrent use; all the ready-made ones are.
type Fault func(w http.ResponseWriter, r *http.Request) bool

// FaultStatus answers every request with the given status, content type and
// body. It is safe for concurrent use.
func FaultStatus(code int, contentType, body string) Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
		return true
	}
}

// FaultOAuthError answers every request with an RFC 6749 §5.2 error: the
// given HTTP status and a JSON body with error and error_description (the
// latter omitted when empty). It is safe for concurrent use.
func FaultOAuthError(httpStatus int, oauthCode, description string) Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		if httpStatus == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="testserver"`)
		}
		writeOAuthError(w, httpStatus, oauthCode, description)
		return true
	}
}

// FaultGarbage answers every request with 200, a JSON content type and a
// body that is not JSON. It is safe for concurrent use.
func FaultGarbage() Fault {
	return FaultStatus(http.StatusOK, "application/json", "<html>this is not JSON</html>")
}

// FaultBody answers every request with status, an application/json content
// type and body as given, which need not be valid: use it for responses
// without access_token, with a negative expires_in, huge bodies and the
// like. It is safe for concurrent use.
func FaultBody(status int, body string) Fault {
	return FaultStatus(status, "application/json", body)
}

// FaultHang never answers: the request is held until the client goes away
// or the server closes, and then its connection is closed. It is safe for
// concurrent use.
func FaultHang() Fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		abortConn(w)
		return true
	}
}

// FaultCloseConn closes the connection without answering. It is safe for
// concurrent use.
func FaultCloseConn() Fault {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		abortConn(w)
		return true
	}
}

// FaultResetMidBody sends 200 with headers announcing a JSON body longer
// than what follows, writes the start of a token response and closes the
// connection, so the client fails while reading the body. It is safe for
// concurrent use.
func FaultResetMidBody() Fault {
	const partial = `{"access_token":"trunc`
	return func(w http.ResponseWriter, _ *http.Request) bool {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer conn.Close()
		_, _ = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			len(partial)+1000, partial)
		_ = buf.Flush()
		return true
	}
}

// FaultTimes applies f to the next n requests only, then passes every
// request on; n <= 0 never applies f. Each call makes an independent
// counter. It is safe for concurrent use.
func FaultTimes(n int, f Fault) Fault {
	var left atomic.Int64
	left.Store(int64(n))
	return func(w http.ResponseWriter, r *http.Request) bool {
		if f == nil || left.Add(-1) < 0 {
			return false
		}
		return f(w, r)
	}
}

// FaultOnce applies f to the next request only. It is safe for concurrent
// use.
func FaultOnce(f Fault) Fault { return FaultTimes(1, f) }

// abortConn closes the request's connection without a response. Where the
// connection cannot be hijacked (HTTP/2), it aborts the handler instead,
// which net/http turns into a stream reset without logging.
func abortConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
