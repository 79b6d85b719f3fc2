package vault

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"
)

// Token checks skip the store for a token checked against it recently: an
// API request then costs no round trip for its authentication. Only a
// token the store confirmed is cached, with its user and the SHA-256 of
// its secret, never the secret; a presented secret is compared with that
// hash in constant time on every use, and a mismatch or an unknown id goes
// to the store as before (so a wrong token is never valid, and every
// failure is audited as before).
//
// A token deleted from the database stays valid in a process that cached
// it for at most the TTL. Nothing deletes a token yet; revocation (issue
// 11) must call Service.ForgetToken in the process that revokes, and tell
// the other processes to call it too (for example over PostgreSQL
// LISTEN/NOTIFY), or the TTL bounds how long they accept a revoked token.
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
// caches nothing.
type tokenCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time
	mu   sync.Mutex
	m    map[string]cachedToken
}

type cachedToken struct {
	userID  string
	hash    [sha256.Size]byte
	expires time.Time
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

// user returns the user of token id if it is cached, unexpired, and sum
// is the hash of its secret.
func (c *tokenCache) user(id string, sum [sha256.Size]byte) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) || subtle.ConstantTimeCompare(e.hash[:], sum[:]) != 1 {
		return "", false
	}
	return e.userID, true
}

// put caches t, which the store just returned and whose secret matched.
func (c *tokenCache) put(t *Token) {
	if c == nil || len(t.Hash) != sha256.Size {
		return
	}
	now := c.now()
	e := cachedToken{userID: t.UserID, expires: now.Add(c.ttl)}
	copy(e.hash[:], t.Hash)
	c.mu.Lock()
	defer c.mu.Unlock()
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

// forget drops token id.
func (c *tokenCache) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// ForgetToken makes this Service ask the store again about token id on
// its next use. It is the hook revocation calls (see DefaultTokenCacheTTL).
func (s *Service) ForgetToken(id string) { s.tokens.forget(id) }

var errTokenGone = Errorf(EUNAUTHORIZED, "the API token has been deleted or belongs to another user")

// CheckToken reports whether token tokenID still exists and belongs to
// user userID, as a credential made from it earlier (such as a browser
// session) must on every request. Returns EUNAUTHORIZED if not, and
// another error if the store fails.
func (s *Service) CheckToken(ctx context.Context, userID, tokenID string) error {
	t, err := s.store.Token(ctx, tokenID)
	if ErrorCode(err) == ENOTFOUND {
		return errTokenGone
	} else if err != nil {
		return fmt.Errorf("read token %s: %w", tokenID, err)
	}
	if t.UserID != userID {
		return errTokenGone
	}
	return nil
}
