package vault

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/hkdf"
)

// A browser session is a signed cookie, not a stored row: it holds the user
// id, the API token id it was made from, its expiry and a random session
// id, followed by an HMAC-SHA256 of all that under a key derived from the
// current master key:
//
//	version (1) | expiry, unix seconds (8, big endian) | session id (16) |
//	user id length (1) | user id | token id length (1) | token id | HMAC-SHA256 (32)
//
// The whole is base64url without padding. Deleting the token ends every
// session made from it, since VerifySession reads the token on every
// request; rotating the master key ends every session.
const (
	sessionVersion  byte = 1
	sessionIDSize        = 16
	sessionMACSize       = sha256.Size
	sessionFixed         = 1 + 8 + sessionIDSize + 1 + 1 // without the two ids
	maxSessionBytes      = sessionFixed + 2*255 + sessionMACSize
	// MaxSessionTTL bounds how long a session may be made to last.
	MaxSessionTTL = 7 * 24 * time.Hour
	// DefaultSessionTTL is how long a session lasts unless asked otherwise.
	DefaultSessionTTL = 12 * time.Hour
)

// HKDF labels of the keys derived from the master key for sessions. The
// salt is fixed: the master key is already uniformly random, and a
// distinct info per purpose keeps the two keys independent of each other
// and of every other use of the master key.
const (
	sessionSalt     = "envvault sessions v1"
	infoSessionSign = "envvault session signing key v1"
	infoCSRF        = "envvault csrf key v1"
	labelCSRF       = "envvault csrf token v1"
)

// sessionKeys are the keys derived from the current master key that sign
// session cookies and make CSRF tokens.
type sessionKeys struct {
	sign []byte
	csrf []byte
}

// deriveSessionKeys derives the session keys from a master key with
// HKDF-SHA256.
func deriveSessionKeys(master []byte) *sessionKeys {
	derive := func(info string) []byte {
		key := make([]byte, 32)
		r := hkdf.New(sha256.New, master, []byte(sessionSalt), []byte(info))
		if _, err := io.ReadFull(r, key); err != nil {
			// HKDF-SHA256 yields up to 255*32 bytes; 32 never fails.
			panic(fmt.Sprintf("vault: derive session key: %v", err))
		}
		return key
	}
	return &sessionKeys{sign: derive(infoSessionSign), csrf: derive(infoCSRF)}
}

// Session is a signed-in browser session.
type Session struct {
	// ID is random, unique to the session; CSRF tokens are bound to it.
	ID      string
	UserID  string
	TokenID string
	Expires time.Time // whole seconds, UTC
}

var errBadSession = Errorf(EUNAUTHORIZED, "not signed in or the session has ended")

// NewSession signs in with an API token: it returns a session of the
// token's user lasting ttl (DefaultSessionTTL if 0 or less, at most
// MaxSessionTTL) and the cookie value that carries it. Returns
// EUNAUTHORIZED for a bad token, as Authenticate does.
func (s *Service) NewSession(ctx context.Context, token string, ttl time.Duration) (*Session, string, error) {
	userID, tokenID, err := s.Authenticate(ctx, token)
	if err != nil {
		return nil, "", err
	}
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	ttl = min(ttl, MaxSessionTTL)
	if len(userID) > 255 || len(tokenID) > 255 {
		return nil, "", fmt.Errorf("new session: id too long for a session cookie")
	}
	sid := make([]byte, sessionIDSize)
	if _, err := rand.Read(sid); err != nil {
		return nil, "", fmt.Errorf("new session: read random id: %w", err)
	}
	sess := &Session{
		ID: base64.RawURLEncoding.EncodeToString(sid), UserID: userID, TokenID: tokenID,
		Expires: s.now().Add(ttl).UTC().Truncate(time.Second),
	}
	b := make([]byte, 0, sessionFixed+len(userID)+len(tokenID)+sessionMACSize)
	b = append(b, sessionVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(sess.Expires.Unix()))
	b = append(b, sid...)
	b = append(b, byte(len(userID)))
	b = append(b, userID...)
	b = append(b, byte(len(tokenID)))
	b = append(b, tokenID...)
	b = s.keys.session.mac(b)
	return sess, base64.RawURLEncoding.EncodeToString(b), nil
}

// mac appends the HMAC-SHA256 of b under the signing key to b.
func (k *sessionKeys) mac(b []byte) []byte {
	m := hmac.New(sha256.New, k.sign)
	m.Write(b)
	return m.Sum(b)
}

// VerifySession returns the session a cookie value carries, once its
// signature (compared in constant time), its expiry and its token, which
// must still exist and belong to its user, have been checked. Returns
// EUNAUTHORIZED, with one message for every cause, otherwise.
func (s *Service) VerifySession(ctx context.Context, cookie string) (*Session, error) {
	sess, ok := s.keys.session.parse(cookie)
	if !ok || !s.now().Before(sess.Expires) {
		return nil, errBadSession
	}
	t, err := s.store.Token(ctx, sess.TokenID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, errBadSession
	} else if err != nil {
		return nil, fmt.Errorf("read token %s of a session: %w", sess.TokenID, err)
	}
	if t.UserID != sess.UserID {
		return nil, errBadSession
	}
	return sess, nil
}

// parse checks a cookie value's signature and decodes it. It checks every
// length before it slices, and the signature before it reads any field.
func (k *sessionKeys) parse(cookie string) (*Session, bool) {
	if len(cookie) > base64.RawURLEncoding.EncodedLen(maxSessionBytes) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(b) < sessionFixed+sessionMACSize {
		return nil, false
	}
	body, sum := b[:len(b)-sessionMACSize], b[len(b)-sessionMACSize:]
	want := k.mac(append([]byte(nil), body...))[len(body):]
	if !hmac.Equal(sum, want) || body[0] != sessionVersion {
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
	return &Session{
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

// CSRFToken returns the CSRF token of a session id: an HMAC-SHA256 of it
// under a key derived from the current master key, base64url. A form that
// changes state carries it and CheckCSRF checks it. Any random, secret
// binding works as the session id, such as a pre-sign-in nonce kept in a
// cookie.
func (s *Service) CSRFToken(sessionID string) string {
	return base64.RawURLEncoding.EncodeToString(s.keys.session.csrfMAC(sessionID))
}

// CheckCSRF reports, in constant time, whether token is the CSRF token of
// the session id. An empty session id never matches.
func (s *Service) CheckCSRF(sessionID, token string) bool {
	if sessionID == "" || len(token) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return false
	}
	return hmac.Equal(got, s.keys.session.csrfMAC(sessionID))
}

func (k *sessionKeys) csrfMAC(sessionID string) []byte {
	m := hmac.New(sha256.New, k.csrf)
	m.Write(aad(labelCSRF, sessionID))
	return m.Sum(nil)
}
