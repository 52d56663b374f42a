package authenticator

import (
	"sync/atomic"
	"time"
)

type refreshCause int

const (
	causeExplicit refreshCause = iota
	causeRejected
	causeExpired
	causeProactive
	causeFirstUse
)

// Stats are counters of a Keeper's token requests, for reports and tests.
type Stats struct {
	// TokenRequests counts token fetches started, failed ones included;
	// a fetch that fails in the config store sends no HTTP request.
	TokenRequests int64
	// Failures counts token fetches that failed.
	Failures int64
	// CacheHits counts tokens taken from the TokenCache, with no request.
	CacheHits int64
	// FirstUse counts fetches started because no token was held yet.
	FirstUse int64
	// Rejected counts refreshes started because the server rejected the
	// current token.
	Rejected int64
	// Expired counts refreshes a caller waited for because the token had
	// expired.
	Expired int64
	// Proactive counts refreshes started in the background before expiry.
	Proactive int64
	// Explicit counts refreshes started by RefreshCredentials.
	Explicit int64
	// Obtained is when the token the Keeper holds arrived, from the flow
	// or the cache; zero while it holds none.
	Obtained time.Time
	// Expiry is when the token it holds expires, its lifetime counted
	// from when it was asked for (for a login, when the login began), so
	// early rather than late; zero while it holds none or when its
	// lifetime is unknown.
	Expiry time.Time
}

type statCounters struct {
	requests, failures, cacheHits                      atomic.Int64
	firstUse, rejected, expired, proactive, explicitly atomic.Int64
}

func (s *statCounters) count(c refreshCause) {
	switch c {
	case causeFirstUse:
		s.firstUse.Add(1)
	case causeRejected:
		s.rejected.Add(1)
	case causeExpired:
		s.expired.Add(1)
	case causeProactive:
		s.proactive.Add(1)
	default:
		s.explicitly.Add(1)
	}
}

// Stats returns the counters so far and the times of the token held. It
// never waits.
func (k *Keeper) Stats() Stats {
	s := &k.stats
	var obtained, expiry time.Time
	if c := k.current.Load(); c != nil {
		obtained, expiry = c.arrived, c.expiry
	}
	return Stats{
		Obtained:      obtained,
		Expiry:        expiry,
		TokenRequests: s.requests.Load(),
		Failures:      s.failures.Load(),
		CacheHits:     s.cacheHits.Load(),
		FirstUse:      s.firstUse.Load(),
		Rejected:      s.rejected.Load(),
		Expired:       s.expired.Load(),
		Proactive:     s.proactive.Load(),
		Explicit:      s.explicitly.Load(),
	}
}
