package web

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type sessionEnv struct {
	svc    *vault.Service
	sess   *sessions
	store  *sqlite.DB
	path   string
	clock  *clock
	userID string
	token  string
}

// newSessionEnv is sessions over a Service over a real SQLite file with
// one user.
func newSessionEnv(t testing.TB, keys ...[]byte) *sessionEnv {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		keys = [][]byte{mustKey(t)}
	}
	kr, err := seal.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc := vault.NewService(store, kr, vault.Options{Now: c.Now})
	u, token, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return &sessionEnv{svc: svc, sess: newSessions(svc, kr, c.Now, 0), store: store, path: path, clock: c, userID: u.ID, token: token}
}

// withKeys is sessions of a second Service over the same store under
// other keys.
func (e *sessionEnv) withKeys(t *testing.T, current []byte, previous ...[]byte) *sessions {
	t.Helper()
	kr, err := seal.NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return newSessions(vault.NewService(e.store, kr, vault.Options{Now: e.clock.Now}), kr, e.clock.Now, 0)
}

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSession(t *testing.T, e *sessionEnv) (*session, string) {
	t.Helper()
	sess, cookie, err := e.sess.signIn(context.Background(), e.token, 0)
	if err != nil {
		t.Fatalf("signIn: %v", err)
	}
	return sess, cookie
}

func wantUnauthorized(t *testing.T, err error, what string) {
	t.Helper()
	if code := vault.ErrorCode(err); code != vault.EUNAUTHORIZED {
		t.Fatalf("%s: got error %v (code %q), want %s", what, err, code, vault.EUNAUTHORIZED)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	sess, cookie := mustSession(t, e)
	if sess.UserID != e.userID || !strings.HasPrefix(sess.TokenID, vault.PrefixToken) || len(sess.ID) < 20 {
		t.Fatalf("session = %+v", sess)
	}
	if want := e.clock.Now().Add(DefaultSessionTTL); !sess.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", sess.Expires, want)
	}
	if strings.Contains(cookie, e.token) || strings.Contains(cookie, strings.SplitN(e.token, ".", 2)[1]) {
		t.Fatal("cookie carries the API token")
	}
	got, err := e.sess.verify(ctx, cookie)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if *got != *sess {
		t.Fatalf("verified %+v, made %+v", got, sess)
	}
	// Two sessions of one token differ.
	other, cookie2 := mustSession(t, e)
	if other.ID == sess.ID || cookie2 == cookie {
		t.Fatal("two sessions share an id or a cookie")
	}
}

func TestSessionTTL(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	sess, _, err := e.sess.signIn(ctx, e.token, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(time.Hour); !sess.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", sess.Expires, want)
	}
	sess, _, err = e.sess.signIn(ctx, e.token, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(MaxSessionTTL); !sess.Expires.Equal(want) {
		t.Fatalf("expires %v, want the cap %v", sess.Expires, want)
	}
}

func TestSessionExpires(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	_, cookie := mustSession(t, e)
	// A request every 20 minutes keeps it from the idle timeout up to its
	// absolute expiry.
	for left := DefaultSessionTTL - time.Second; left > 0; left -= min(left, 20*time.Minute) {
		e.clock.Add(min(left, 20*time.Minute))
		if _, err := e.sess.verify(ctx, cookie); err != nil {
			t.Fatalf("%v before expiry: %v", left, err)
		}
	}
	e.clock.Add(time.Second)
	_, err := e.sess.verify(ctx, cookie)
	wantUnauthorized(t, err, "at expiry")
}

// TestSessionIdle: a session ends after vault.DefaultSessionIdle without a
// request, and its copy with it.
func TestSessionIdle(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	_, cookie := mustSession(t, e)
	e.clock.Add(vault.DefaultSessionIdle - time.Minute)
	if _, err := e.sess.verify(ctx, cookie); err != nil {
		t.Fatalf("a minute before the idle timeout: %v", err)
	}
	e.clock.Add(vault.DefaultSessionIdle)
	_, err := e.sess.verify(ctx, cookie)
	wantUnauthorized(t, err, "after the idle timeout")
	e.clock.Add(-vault.DefaultSessionIdle) // its row is gone: no going back
	_, err = e.sess.verify(ctx, cookie)
	wantUnauthorized(t, err, "after the idle timeout, with the clock put back")
}

func TestSessionBadToken(t *testing.T) {
	e := newSessionEnv(t)
	for _, tok := range []string{"", "nonsense", e.token + "x", strings.Replace(e.token, ".", ".A", 1)} {
		_, cookie, err := e.sess.signIn(context.Background(), tok, 0)
		wantUnauthorized(t, err, "signIn with a bad token")
		if cookie != "" {
			t.Fatal("a cookie for a bad token")
		}
	}
}

// Deleting a token ends every session made from it at the next request.
func TestSessionEndsWithItsToken(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	sess, cookie := mustSession(t, e)
	db, err := sql.Open("sqlite", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(ctx, `DELETE FROM tokens WHERE id = ?`, sess.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("deleted %d tokens", n)
	}
	_, err = e.sess.verify(ctx, cookie)
	wantUnauthorized(t, err, "after its token was deleted")
}

// Every changed byte and every truncation is refused, never a panic.
func TestSessionTampered(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	_, cookie := mustSession(t, e)
	raw, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		_, err := e.sess.verify(ctx, base64.RawURLEncoding.EncodeToString(b))
		wantUnauthorized(t, err, "a flipped bit")
	}
	for n := range len(raw) {
		_, err := e.sess.verify(ctx, base64.RawURLEncoding.EncodeToString(raw[:n]))
		wantUnauthorized(t, err, "a truncated cookie")
	}
	for _, c := range []string{"", "!!!", cookie + "A", cookie + "=", strings.Repeat("A", 10000), cookie[:len(cookie)-1]} {
		_, err := e.sess.verify(ctx, c)
		wantUnauthorized(t, err, "a malformed cookie")
	}
}

// A cookie signed for another user's token is refused: the user id is
// bound to the token.
func TestSessionOtherUsersToken(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	_, bobToken, err := e.svc.CreateUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := e.sess.signIn(ctx, bobToken, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bob.UserID == e.userID {
		t.Fatal("bob is alice")
	}
	alice, cookie := mustSession(t, e)
	if e.sess.checkCSRF(alice.ID, e.sess.csrfToken(bob.ID)) {
		t.Fatal("bob's CSRF token passes for alice's session")
	}
	// Alice's session re-signed with bob's token id, as only a holder of
	// the signing key could, is refused: vault.Service.CheckToken binds
	// the token to the session's user.
	raw, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		t.Fatal(err)
	}
	body := raw[:len(raw)-sessionMACSize]
	forged := append(bytes.Clone(body[:len(body)-len(alice.TokenID)]), bob.TokenID...)
	forged = append(forged, e.sess.sign.Sum(forged)...)
	if s, ok := e.sess.parse(base64.RawURLEncoding.EncodeToString(forged)); !ok || s.UserID != alice.UserID || s.TokenID != bob.TokenID {
		t.Fatalf("the forgery does not parse as alice's session on bob's token: %+v", s)
	}
	_, err = e.sess.verify(ctx, base64.RawURLEncoding.EncodeToString(forged))
	wantUnauthorized(t, err, "alice's session on bob's token")
	if _, err := e.sess.verify(ctx, cookie); err != nil {
		t.Fatalf("alice's own cookie: %v", err)
	}
}

// Sessions are signed under the current master key: after a rotation,
// with the old key kept as previous, old sessions end; the same key gives
// the same signing key in another process.
func TestSessionKeys(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	e := newSessionEnv(t, k1)
	ctx := context.Background()
	sess, cookie := mustSession(t, e)
	csrf := e.sess.csrfToken(sess.ID)

	same := e.withKeys(t, k1)
	if _, err := same.verify(ctx, cookie); err != nil {
		t.Fatalf("another service with the same key: %v", err)
	}
	if !same.checkCSRF(sess.ID, csrf) {
		t.Fatal("another service with the same key refuses the CSRF token")
	}
	rotated := e.withKeys(t, k2, k1)
	_, err := rotated.verify(ctx, cookie)
	wantUnauthorized(t, err, "after a key rotation")
	if rotated.checkCSRF(sess.ID, csrf) {
		t.Fatal("CSRF token passes after a key rotation")
	}
}

func TestCSRF(t *testing.T) {
	e := newSessionEnv(t)
	sess, _ := mustSession(t, e)
	tok := e.sess.csrfToken(sess.ID)
	if !e.sess.checkCSRF(sess.ID, tok) {
		t.Fatal("the session's own CSRF token is refused")
	}
	if tok != e.sess.csrfToken(sess.ID) {
		t.Fatal("CSRF token is not stable for a session")
	}
	other, _ := mustSession(t, e)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[0] ^= 1
	for _, c := range []struct{ sid, tok string }{
		{other.ID, tok},
		{sess.ID, ""},
		{sess.ID, tok[:len(tok)-1]},
		{sess.ID, tok + "A"},
		{sess.ID, base64.RawURLEncoding.EncodeToString(raw)},
		{sess.ID, strings.Repeat("*", len(tok))},
		{"", e.sess.csrfToken("")},
	} {
		if e.sess.checkCSRF(c.sid, c.tok) {
			t.Errorf("checkCSRF(%q, %q) = true", c.sid, c.tok)
		}
	}
}

func FuzzVerifySession(f *testing.F) {
	e := newSessionEnv(f)
	_, cookie, err := e.sess.signIn(context.Background(), e.token, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cookie)
	f.Add("")
	f.Add(cookie[:len(cookie)/2])
	f.Fuzz(func(t *testing.T, c string) {
		sess, err := e.sess.verify(context.Background(), c)
		if err == nil && c != cookie {
			// Base64 has no two encodings of one byte string without
			// padding except through trailing bits; those decode the same.
			got, _ := base64.RawURLEncoding.DecodeString(c)
			want, _ := base64.RawURLEncoding.DecodeString(cookie)
			if string(got) != string(want) {
				t.Fatalf("accepted a forged cookie: %+v", sess)
			}
		}
	})
}

// CSRF tokens made before sessions moved into package web still pass: the
// key derivation and label are unchanged.
func TestCSRFGolden(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	kr, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("7b00afad83c82695af920d79ac8e612f283106ae041c50883b20d126c4fd8ff9")
	m := newSessions(nil, kr, time.Now, 0)
	if got := m.csrfToken("golden-session"); got != base64.RawURLEncoding.EncodeToString(want) {
		t.Fatalf("csrfToken = %s", got)
	}
	if !m.checkCSRF("golden-session", base64.RawURLEncoding.EncodeToString(want)) {
		t.Fatal("the golden CSRF token is refused")
	}
}
