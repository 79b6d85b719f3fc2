package vault

import (
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"
)

// Token checks skip the store for a token checked against it recently: an
// API request then costs no round trip for its authentication. Only a
// token the store confirmed is cached, with its user, scope, expiry and
// the SHA-256 of its secret, never the secret; a presented secret is
// compared with that hash in constant time on every use, and a mismatch
// or an unknown id goes to the store as before (so a wrong token is never
// valid).
//
// A revoked token leaves the cache at once: RevokeToken calls ForgetToken
// in the process that revokes, and a store shared by processes (a
// TokenFeed: PostgreSQL, by LISTEN/NOTIFY) tells every other process,
// whose cache drops it too. While such a store's feed is down (before it
// first listens, or after its connection is lost) the cache is emptied and
// serves nothing: every check goes to the store until the feed is back.
// Without a feed (SQLite, where one process is the norm) a token revoked
// by another process stays valid in this one for at most the TTL.
const (
	// DefaultTokenCacheTTL is how long a token the store confirmed is
	// trusted without asking it again, unless Options.TokenCacheTTL says
	// otherwise.
	DefaultTokenCacheTTL = 10 * time.Second
	// TokenCacheSize is the most tokens a Service caches; past it, expired
	// entries are dropped first, then arbitrary ones.
	TokenCacheSize = 10_000
)

// tokenCache holds tokens the store confirmed, by id. A nil *tokenCache
// caches nothing. It is the TokenWatcher of the Service's store.
type tokenCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time
	mu   sync.Mutex
	m    map[string]cachedToken
	// gen changes whenever a token may have been revoked: a token read
	// from the store before the change is not cached after it.
	gen uint64
	// down is true while the store's TokenFeed cannot tell of
	// revocations: nothing is cached or served then.
	down bool
}

type cachedToken struct {
	userID       string
	scope        TokenScope
	hash         [sha256.Size]byte
	expires      time.Time // of the cache entry
	tokenExpires time.Time // of the token; zero for never
	lastUsed     time.Time // last written last_used_at
}

func newTokenCache(ttl time.Duration, size int, now func() time.Time) *tokenCache {
	if ttl < 0 {
		return nil
	}
	if ttl == 0 {
		ttl = DefaultTokenCacheTTL
	}
	return &tokenCache{ttl: ttl, size: size, now: now, m: make(map[string]cachedToken)}
}

// watchTokens subscribes the cache to the store's feed, if it has one:
// the cache serves nothing until the feed is up.
func (s *Service) watchTokens() {
	feed, ok := s.store.(TokenFeed)
	if !ok || s.tokens == nil {
		return
	}
	s.tokens.mu.Lock()
	s.tokens.down = true
	s.tokens.mu.Unlock()
	feed.WatchTokens(s.tokens)
}

// get returns the entry of token id if it is cached, unexpired, and sum
// is the hash of its secret.
func (c *tokenCache) get(id string, sum [sha256.Size]byte) (cachedToken, bool) {
	if c == nil {
		return cachedToken{}, false
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) || subtle.ConstantTimeCompare(e.hash[:], sum[:]) != 1 {
		return cachedToken{}, false
	}
	return e, true
}

// known reports whether token id with the secret of hash sum was
// confirmed by this process and is still in the cache, its entry's TTL
// past or not.
func (c *tokenCache) known(id string, sum [sha256.Size]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	return ok && subtle.ConstantTimeCompare(e.hash[:], sum[:]) == 1
}

// generation returns the current generation, to be passed to put.
func (c *tokenCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches t, which the store returned when the generation was gen and
// whose secret matched; it does nothing if a token may have been revoked
// since.
func (c *tokenCache) put(t *Token, gen uint64) {
	if c == nil || len(t.Hash) != sha256.Size {
		return
	}
	now := c.now()
	e := cachedToken{userID: t.UserID, scope: t.Scope, expires: now.Add(c.ttl), tokenExpires: t.ExpiresAt, lastUsed: t.LastUsedAt}
	copy(e.hash[:], t.Hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || c.gen != gen {
		return
	}
	if _, ok := c.m[t.ID]; !ok && len(c.m) >= c.size {
		for id, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, id)
			}
		}
		for id := range c.m { // map order is arbitrary
			if len(c.m) < c.size {
				break
			}
			delete(c.m, id)
		}
	}
	c.m[t.ID] = e
}

// claimTouch reports whether the use of token id at now is the one that
// writes its last use: the first after TokenTouchInterval.
func (c *tokenCache) claimTouch(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.Sub(e.lastUsed) < TokenTouchInterval {
		return false
	}
	e.lastUsed = now
	c.m[id] = e
	return true
}

// forget drops token id.
func (c *tokenCache) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.gen++
	c.mu.Unlock()
}

// setDown empties the cache and sets whether it may serve.
func (c *tokenCache) setDown(down bool) {
	c.mu.Lock()
	clear(c.m)
	c.gen++
	c.down = down
	c.mu.Unlock()
}

// TokenFeedUp lets the cache serve again, from empty: a revocation missed
// while the feed was down cannot be in it.
func (c *tokenCache) TokenFeedUp() { c.setDown(false) }

// TokenFeedDown empties the cache and stops it serving until TokenFeedUp.
func (c *tokenCache) TokenFeedDown() { c.setDown(true) }

// TokenRevoked drops a token another process revoked.
func (c *tokenCache) TokenRevoked(id string) { c.forget(id) }

// ForgetToken makes this Service ask the store again about token id on
// its next use. RevokeToken calls it; a TokenFeed calls it in every other
// process.
func (s *Service) ForgetToken(id string) { s.tokens.forget(id) }
