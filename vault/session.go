package vault

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"
)

// Dashboard sessions are kept server-side: the browser's cookie (signed by
// the dashboard, web/session.go) names a session, and the session holds
// only while its row does. Signing out deletes the row; revoking the token
// it was opened with deletes it too (the store's foreign key); so a copy
// of the cookie is refused afterwards by every process sharing the store.
// A session ends at its absolute expiry (the dashboard's TTL, or the
// token's expiry if sooner) or after an idle time without a request. Its
// last request is written at most once per SessionTouchInterval, so a
// page view does not cost a write.
const (
	// DefaultSessionIdle is how long a session lasts without a request,
	// unless the dashboard is configured otherwise.
	DefaultSessionIdle = 30 * time.Minute
	// SessionTouchInterval is how often, at most, a session's last
	// request is written: the idle timeout is exact to within it.
	SessionTouchInterval = time.Minute
	// sessionIDBytes is the size of a session id's random bytes.
	sessionIDBytes = 16
)

// Session is a signed-in dashboard session.
type Session struct {
	// ID is what the cookie carries: random, shown to nobody else. A
	// store keeps and is given only its SHA-256 (SessionKey).
	ID         string
	UserID     string
	TokenID    string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// SessionStore keeps dashboard sessions, by the key SessionKey gives;
// every method is scoped to the session's user.
type SessionStore interface {
	// CreateSession inserts a session, and deletes the user's sessions
	// that expired by its creation. Returns ENOTFOUND if the user or the
	// token does not exist.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns a session of the user by key. Returns ENOTFOUND if
	// it or its token does not exist.
	Session(ctx context.Context, userID, key string) (*Session, error)
	// TouchSession sets the session's last request to at, if it is later.
	TouchSession(ctx context.Context, userID, key string, at time.Time) error
	// DeleteSession deletes a session; there being none is not an error.
	DeleteSession(ctx context.Context, userID, key string) error
}

// SessionKey is the key a store keeps a session by: the SHA-256, in hex,
// of its id, so that the table alone cannot make a cookie.
func SessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

var (
	errBadSession   = Errorf(EUNAUTHORIZED, "not signed in or the session has ended")
	errSessionScope = Errorf(EFORBIDDEN, "the dashboard needs a token of scope full: this token may only use the API")
)

// OpenSession signs in to the dashboard with an API token: it returns a
// new session of the token's user lasting ttl, or until the token
// expires if sooner. Returns EUNAUTHORIZED for a bad token (as
// AuthenticateToken), EFORBIDDEN for a token whose scope is not full.
func (s *Service) OpenSession(ctx context.Context, token string, ttl time.Duration) (*Session, error) {
	cred, err := s.AuthenticateToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if cred.Scope != TokenFull {
		return nil, errSessionScope
	}
	raw := make([]byte, sessionIDBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("new session: read random id: %w", err)
	}
	now := s.timestamp()
	sess := &Session{
		ID: base64.RawURLEncoding.EncodeToString(raw), UserID: cred.UserID, TokenID: cred.TokenID,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(ttl).Truncate(time.Second),
	}
	if !cred.Expires.IsZero() && cred.Expires.Before(sess.ExpiresAt) {
		sess.ExpiresAt = cred.Expires
	}
	stored := *sess
	stored.ID = SessionKey(sess.ID)
	if err := s.store.CreateSession(ctx, &stored); err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, errBadSession // the token was revoked meanwhile
		}
		return nil, fmt.Errorf("create session: %w", err)
	}
	return sess, nil
}

// CheckSession returns the user's session of id if it still holds: its
// row exists (not signed out, its token not revoked), it has not expired
// and has not been idle for idle or longer. It writes the session's last
// request at most once per SessionTouchInterval. Returns EUNAUTHORIZED (an
// *AuthError saying why), with one message for every cause, otherwise.
func (s *Service) CheckSession(ctx context.Context, userID, id string, idle time.Duration) (*Session, error) {
	key := SessionKey(id)
	sess, err := s.store.Session(ctx, userID, key)
	if ErrorCode(err) == ENOTFOUND {
		// Signed out, its token revoked, or never made.
		return nil, &AuthError{Err: errBadSession, Reason: ReasonUnknown}
	} else if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	now := s.timestamp()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= idle {
		if err := s.store.DeleteSession(ctx, userID, key); err != nil {
			return nil, fmt.Errorf("delete an ended session: %w", err)
		}
		return nil, &AuthError{Err: errBadSession, Reason: ReasonExpired}
	}
	if now.Sub(sess.LastSeenAt) >= SessionTouchInterval {
		if err := s.store.TouchSession(ctx, userID, key, now); err != nil {
			return nil, fmt.Errorf("record a session's request: %w", err)
		}
		sess.LastSeenAt = now
	}
	sess.ID = id
	return sess, nil
}

// CloseSession ends the user's session of id (sign-out): every copy of
// its cookie is refused from now on. A session already gone is not an
// error.
func (s *Service) CloseSession(ctx context.Context, userID, id string) error {
	if err := s.store.DeleteSession(ctx, userID, SessionKey(id)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
