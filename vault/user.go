package vault

import (
	"context"
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

// CreateUser creates a user and returns it with its first API token, which
// is shown only this once.
func (s *Service) CreateUser(ctx context.Context, name string) (*User, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxProfileNameLen || !printable(name) {
		return nil, "", Invalid("name", "is required: at most %d printable characters", MaxProfileNameLen)
	}
	now := s.timestamp()
	u := &User{ID: NewID(PrefixUser), Name: name, CreatedAt: now}
	t, token := newToken(u.ID, now)
	events := []*AuditEvent{
		s.event(ctx, u.ID, ActionUserCreate, TargetUser, u.ID, map[string]any{"name": u.Name}),
		s.event(ctx, u.ID, ActionTokenCreate, TargetToken, t.ID, nil),
	}
	if err := s.store.CreateUser(ctx, u, t, events...); err != nil {
		return nil, "", fmt.Errorf("create user: %w", err)
	}
	return u, token, nil
}

// CreateToken makes a new API token for an existing user. Returns
// ENOTFOUND if the user does not exist.
func (s *Service) CreateToken(ctx context.Context, userID string) (string, error) {
	t, token := newToken(userID, s.timestamp())
	if err := s.store.CreateToken(ctx, t, s.event(ctx, userID, ActionTokenCreate, TargetToken, t.ID, nil)); err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return token, nil
}

var errBadToken = Errorf(EUNAUTHORIZED, "missing or invalid API token")

// Authenticate returns the user id and token id a token belongs to.
// Returns EUNAUTHORIZED, with one message for every cause, otherwise. A
// token it confirmed in the last TTL is checked against its cached hash
// without the store (see DefaultTokenCacheTTL).
func (s *Service) Authenticate(ctx context.Context, token string) (userID, tokenID string, err error) {
	id, secret, ok := splitToken(token)
	if !ok {
		return "", "", errBadToken
	}
	if userID, ok := s.tokens.user(id, sha256.Sum256([]byte(secret))); ok {
		return userID, id, nil
	}
	t, err := s.store.Token(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return "", "", s.authFailed(ctx, id, "unknown token")
	} else if err != nil {
		return "", "", fmt.Errorf("read token %s: %w", id, err)
	}
	if !t.matches(secret) {
		return "", "", s.authFailed(ctx, id, "wrong secret")
	}
	s.tokens.put(t)
	return t.UserID, t.ID, nil
}
