// Package ratelimit keeps token-bucket limiters (golang.org/x/time/rate)
// by key, such as a client address or a user id, in a bounded map.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Set is limiters by key, all of one rate and burst, at most Max of them.
// Past Max, limiters that are full (idle: they hold no state worth
// keeping) are dropped; if none is, a new key shares one overflow limiter
// until some are, so memory stays bounded whatever keys a flood makes up,
// and the flood is still limited.
type Set struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu       sync.Mutex
	m        map[string]*rate.Limiter
	overflow *rate.Limiter
	// noScanUntil spares a full map a scan per new key while no limiter
	// in it is idle.
	noScanUntil time.Time
}

// scanPause is how long a full map whose scan freed nothing is not
// scanned again.
const scanPause = time.Second

// New returns a Set of limiters allowing perSecond events a second with
// bursts of burst, keeping at most max keys; now is the clock (time.Now
// if nil).
func New(perSecond float64, burst, max int, now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	return &Set{limit: rate.Limit(perSecond), burst: burst, max: max, now: now,
		m: make(map[string]*rate.Limiter), overflow: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// get returns the limiter of key, making it if there is room.
func (s *Set) get(key string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.m[key]; ok {
		return l
	}
	if len(s.m) >= s.max {
		now := s.now()
		if now.Before(s.noScanUntil) {
			return s.overflow
		}
		for k, l := range s.m {
			if l.TokensAt(now) >= float64(s.burst) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.max {
			s.noScanUntil = now.Add(scanPause)
			return s.overflow
		}
	}
	l := rate.NewLimiter(s.limit, s.burst)
	s.m[key] = l
	return l
}

// Allow takes one event from key's limiter and reports whether it had one.
func (s *Set) Allow(key string) bool { return s.get(key).AllowN(s.now(), 1) }

// Wait reports how long key's limiter needs before it has an event to
// give, without taking one: 0 if it has one now.
func (s *Set) Wait(key string) time.Duration {
	tokens := s.get(key).TokensAt(s.now())
	if tokens >= 1 {
		return 0
	}
	if s.limit <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second))
}

// Len returns how many keys have a limiter of their own.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
