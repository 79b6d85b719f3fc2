package web

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// A browser session is a stored row (vault.Session: server-side, in the
// database every process shares) named by a signed cookie. The cookie
// holds the user id, the API token id the session was opened with, its
// expiry and the session's random id, followed by an HMAC-SHA256 of all
// that under a key derived from the current master key:
//
//	version (1) | expiry, unix seconds (8, big endian) | session id (16) |
//	user id length (1) | user id | token id length (1) | token id | HMAC-SHA256 (32)
//
// The whole is base64url without padding. The signature lets a forged or
// altered cookie be refused without a database read; the row decides
// whether the session still holds (vault.Service.CheckSession): sign-out
// deletes it, revoking its token deletes it, and it ends after its
// absolute expiry or an idle time. A copy of the cookie is then refused
// by every process. Rotating the master key ends every session too.
const (
	sessionVersion  byte = 1
	sessionIDSize        = 16
	sessionMACSize       = seal.MACSize
	sessionFixed         = 1 + 8 + sessionIDSize + 1 + 1 // without the two ids
	maxSessionBytes      = sessionFixed + 2*255 + sessionMACSize
	// MaxSessionTTL bounds how long a session may be made to last.
	MaxSessionTTL = 7 * 24 * time.Hour
	// DefaultSessionTTL is how long a session lasts unless asked otherwise.
	DefaultSessionTTL = 12 * time.Hour
)

// HKDF salt and infos of the keys derived from the master key for
// sessions (seal.Keyring.MAC). The salt is fixed: the master key is already
// uniformly random, and a distinct info per purpose keeps the two keys
// independent of each other and of every other use of the master key.
// They are part of every cookie and form in flight: changing one signs
// everybody out.
const (
	sessionSalt     = "envvault sessions v1"
	infoSessionSign = "envvault session signing key v1"
	infoCSRF        = "envvault csrf key v1"
	labelCSRF       = "envvault csrf token v1"
)

// session is a signed-in browser session.
type session struct {
	// ID is random, unique to the session; CSRF tokens are bound to it.
	ID      string
	UserID  string
	TokenID string
	Expires time.Time // whole seconds, UTC
}

// sessions makes and checks session cookies and CSRF tokens.
type sessions struct {
	vault *vault.Service
	sign  *seal.MAC // signs session cookies
	csrf  *seal.MAC // makes CSRF tokens
	now   func() time.Time
	idle  time.Duration // a session ends after this long without a request
}

// newSessions returns sessions signed under keys derived from the current
// key of keys, signing in through svc, that end after idle without a
// request (vault.DefaultSessionIdle if 0 or less).
func newSessions(svc *vault.Service, keys *seal.Keyring, now func() time.Time, idle time.Duration) *sessions {
	if idle <= 0 {
		idle = vault.DefaultSessionIdle
	}
	return &sessions{vault: svc, now: now, idle: idle,
		sign: keys.MAC(sessionSalt, infoSessionSign), csrf: keys.MAC(sessionSalt, infoCSRF)}
}

var errBadSession = vault.Errorf(vault.EUNAUTHORIZED, "not signed in or the session has ended")

// signIn signs in with an API token: it opens a session of the token's
// user lasting ttl (DefaultSessionTTL if 0 or less, at most MaxSessionTTL;
// less if the token expires sooner) and returns it with the cookie value
// that carries it. Returns EUNAUTHORIZED for a bad token and EFORBIDDEN
// for a token whose scope is not full (vault.Service.OpenSession).
func (m *sessions) signIn(ctx context.Context, token string, ttl time.Duration) (*session, string, error) {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	ttl = min(ttl, MaxSessionTTL)
	vs, err := m.vault.OpenSession(ctx, token, ttl)
	if err != nil {
		return nil, "", err
	}
	userID, tokenID := vs.UserID, vs.TokenID
	if len(userID) > 255 || len(tokenID) > 255 {
		return nil, "", fmt.Errorf("new session: id too long for a session cookie")
	}
	sid, err := base64.RawURLEncoding.DecodeString(vs.ID)
	if err != nil || len(sid) != sessionIDSize {
		return nil, "", fmt.Errorf("new session: the vault's session id is not %d bytes", sessionIDSize)
	}
	sess := &session{ID: vs.ID, UserID: userID, TokenID: tokenID, Expires: vs.ExpiresAt.UTC().Truncate(time.Second)}
	b := make([]byte, 0, sessionFixed+len(userID)+len(tokenID)+sessionMACSize)
	b = append(b, sessionVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(sess.Expires.Unix()))
	b = append(b, sid...)
	b = append(b, byte(len(userID)))
	b = append(b, userID...)
	b = append(b, byte(len(tokenID)))
	b = append(b, tokenID...)
	b = append(b, m.sign.Sum(b)...)
	return sess, base64.RawURLEncoding.EncodeToString(b), nil
}

// verify returns the session a cookie value carries, once its signature
// (compared in constant time) and its expiry have been checked, and the
// vault has found its row still holding, opened with the cookie's token
// (vault.Service.CheckSession). Returns EUNAUTHORIZED (a *vault.AuthError
// saying why, for the metrics), with one message for every cause,
// otherwise.
func (m *sessions) verify(ctx context.Context, cookie string) (*session, error) {
	sess, ok := m.parse(cookie)
	if !ok {
		return nil, &vault.AuthError{Err: errBadSession, Reason: vault.ReasonMalformed}
	}
	if !m.now().Before(sess.Expires) {
		return nil, &vault.AuthError{Err: errBadSession, Reason: vault.ReasonExpired}
	}
	vs, err := m.vault.CheckSession(ctx, sess.UserID, sess.ID, m.idle)
	if vault.ErrorCode(err) == vault.EUNAUTHORIZED {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("check a session: %w", err)
	}
	if vs.TokenID != sess.TokenID {
		return nil, &vault.AuthError{Err: errBadSession, Reason: vault.ReasonMismatch}
	}
	return sess, nil
}

// signOut ends the session on the server: every copy of its cookie is
// refused from now on, by every process.
func (m *sessions) signOut(ctx context.Context, sess *session) error {
	return m.vault.CloseSession(ctx, sess.UserID, sess.ID)
}

// parse checks a cookie value's signature and decodes it. It checks every
// length before it slices, and the signature before it reads any field.
func (m *sessions) parse(cookie string) (*session, bool) {
	if len(cookie) > base64.RawURLEncoding.EncodedLen(maxSessionBytes) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(b) < sessionFixed+sessionMACSize {
		return nil, false
	}
	body, sum := b[:len(b)-sessionMACSize], b[len(b)-sessionMACSize:]
	if !m.sign.Verify(body, sum) || body[0] != sessionVersion {
		return nil, false
	}
	expires := int64(binary.BigEndian.Uint64(body[1:9]))
	sid := body[9 : 9+sessionIDSize]
	rest := body[9+sessionIDSize:]
	userID, rest, ok := lengthPrefixed(rest)
	if !ok {
		return nil, false
	}
	tokenID, rest, ok := lengthPrefixed(rest)
	if !ok || len(rest) != 0 || userID == "" || tokenID == "" {
		return nil, false
	}
	return &session{
		ID: base64.RawURLEncoding.EncodeToString(sid), UserID: userID, TokenID: tokenID,
		Expires: time.Unix(expires, 0).UTC(),
	}, true
}

// lengthPrefixed reads one byte of length and that many bytes.
func lengthPrefixed(b []byte) (string, []byte, bool) {
	if len(b) < 1 {
		return "", nil, false
	}
	n := int(b[0])
	if len(b)-1 < n {
		return "", nil, false
	}
	return string(b[1 : 1+n]), b[1+n:], true
}

// csrfToken returns the CSRF token of a session id: an HMAC-SHA256 of it
// under a key derived from the current master key, base64url. A form that
// changes state carries it and checkCSRF checks it. Any random, secret
// binding works as the session id, such as a pre-sign-in nonce kept in a
// cookie.
func (m *sessions) csrfToken(sessionID string) string {
	return base64.RawURLEncoding.EncodeToString(m.csrf.Sum(seal.AAD(labelCSRF, sessionID)))
}

// checkCSRF reports, in constant time, whether token is the CSRF token of
// the session id. An empty session id never matches.
func (m *sessions) checkCSRF(sessionID, token string) bool {
	if sessionID == "" || len(token) != base64.RawURLEncoding.EncodedLen(seal.MACSize) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return false
	}
	return m.csrf.Verify(seal.AAD(labelCSRF, sessionID), got)
}
