package vault

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// TestTokenCacheBounded fills the cache past TokenCacheSize: it never
// holds more, drops expired entries first, and a token it dropped is
// simply not found (the store is asked again).
func TestTokenCacheBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newTokenCache(time.Minute, 100, func() time.Time { return now })
	tok := func(i int) *Token {
		sum := sha256.Sum256(fmt.Appendf(nil, "secret %d", i))
		return &Token{ID: fmt.Sprintf("tok_%d", i), UserID: "usr_1", Hash: sum[:]}
	}
	for i := range 50 {
		c.put(tok(i), 0)
	}
	now = now.Add(2 * time.Minute) // the first 50 expire
	for i := 50; i < 250; i++ {
		c.put(tok(i), 0)
		if len(c.m) > 100 {
			t.Fatalf("%d entries after %d puts, want at most 100", len(c.m), i+1)
		}
	}
	for i := range 50 {
		if _, ok := c.m[tok(i).ID]; ok {
			t.Fatalf("expired token %d kept while unexpired ones were dropped", i)
		}
	}
	last := tok(249)
	if e, ok := c.get(last.ID, [32]byte(last.Hash)); !ok || e.userID != "usr_1" {
		t.Fatalf("the token put last: %q, %v", e.userID, ok)
	}
}
