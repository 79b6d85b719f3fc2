package api

import (
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/internal/ratelimit"
	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/vault"
)

// Each user's writes (every POST, PUT, PATCH and DELETE under /v1) are
// rate limited, by a token bucket per user (internal/ratelimit, at most
// WriteLimiterUsers users with a bucket of their own): past it a write
// answers 429 too_many with Retry-After, before its body is read, and
// does nothing. Reads are not limited here.
const (
	// DefaultWritesPerSecond and DefaultWriteBurst are the limit unless
	// configured (Config.WritesPerSecond, --write-rate; --write-burst).
	DefaultWritesPerSecond = 20.0
	DefaultWriteBurst      = 40
	// WriteLimiterUsers is the most users with a bucket of their own.
	WriteLimiterUsers = 10_000
	// limitWrites names the write limit (vault.LimitError.Limit, and the
	// metrics' reason).
	limitWrites = metrics.LimitWrites
)

// newWriteLimiter returns the write limiter of c, or nil when it is off.
func newWriteLimiter(c Config) *ratelimit.Set {
	rate, burst := c.WritesPerSecond, c.WriteBurst
	if rate < 0 {
		return nil
	}
	if rate == 0 {
		rate = DefaultWritesPerSecond
	}
	if burst <= 0 {
		burst = DefaultWriteBurst
	}
	return ratelimit.New(rate, burst, WriteLimiterUsers, nil)
}

// limitWritesOf refuses a user's write past the write limit with 429.
func (s *Server) limitWritesOf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if s.writes == nil {
			return next(c)
		}
		ctx := c.Request().Context()
		user := UserID(ctx)
		if s.writes.Allow(user) {
			return next(c)
		}
		metrics.RateLimited(ctx, limitWrites)
		wait := time.Duration(math.Ceil(max(s.writes.Wait(user), time.Second).Seconds())) * time.Second
		return vault.NewLimitError(limitWrites, wait,
			"too many writes: at most %g a second per user (bursts of %d); nothing was done: retry after %d s",
			s.writeRate, s.writeBurst, int(wait.Seconds()))
	}
}
