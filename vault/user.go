package vault

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// User owns secrets, profiles and tasks.
type User struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Token is an API token as stored: only the SHA-256 of its secret part.
// The whole token, "tok_<id>.<secret>", is shown once, when it is made.
type Token struct {
	ID        string
	UserID    string
	Hash      []byte
	CreatedAt time.Time
}

func newToken(userID string, now time.Time) (*Token, string) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		panic(fmt.Sprintf("vault: read random token: %v", err))
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	t := &Token{ID: NewID(PrefixToken), UserID: userID, Hash: sum[:], CreatedAt: now}
	return t, t.ID + "." + secret
}

// splitToken parses "tok_<id>.<secret>".
func splitToken(token string) (id, secret string, ok bool) {
	id, secret, ok = strings.Cut(token, ".")
	if !ok || !validID(PrefixToken, id) || secret == "" {
		return "", "", false
	}
	return id, secret, true
}

// matches reports, in constant time, whether secret is the token's.
func (t *Token) matches(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], t.Hash) == 1
}
