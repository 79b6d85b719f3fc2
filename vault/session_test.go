package vault_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	store  *sqlite.DB
	path   string
	clock  *clock
	userID string
	token  string
}

// newSessionEnv is a Service over a real SQLite file with one user.
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
	kr, err := vault.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc := vault.NewService(store, kr, vault.Options{Now: c.Now})
	u, token, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return &sessionEnv{svc: svc, store: store, path: path, clock: c, userID: u.ID, token: token}
}

// withKeys is a second Service over the same store under other keys.
func (e *sessionEnv) withKeys(t *testing.T, current []byte, previous ...[]byte) *vault.Service {
	t.Helper()
	kr, err := vault.NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return vault.NewService(e.store, kr, vault.Options{Now: e.clock.Now})
}

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := vault.ParseKey(vault.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSession(t *testing.T, e *sessionEnv) (*vault.Session, string) {
	t.Helper()
	sess, cookie, err := e.svc.NewSession(context.Background(), e.token, 0)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
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
	if want := e.clock.Now().Add(vault.DefaultSessionTTL); !sess.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", sess.Expires, want)
	}
	if strings.Contains(cookie, e.token) || strings.Contains(cookie, strings.SplitN(e.token, ".", 2)[1]) {
		t.Fatal("cookie carries the API token")
	}
	got, err := e.svc.VerifySession(ctx, cookie)
	if err != nil {
		t.Fatalf("VerifySession: %v", err)
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
	sess, _, err := e.svc.NewSession(ctx, e.token, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(time.Hour); !sess.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", sess.Expires, want)
	}
	sess, _, err = e.svc.NewSession(ctx, e.token, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(vault.MaxSessionTTL); !sess.Expires.Equal(want) {
		t.Fatalf("expires %v, want the cap %v", sess.Expires, want)
	}
}

func TestSessionExpires(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	_, cookie := mustSession(t, e)
	e.clock.Add(vault.DefaultSessionTTL - time.Second)
	if _, err := e.svc.VerifySession(ctx, cookie); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	e.clock.Add(time.Second)
	_, err := e.svc.VerifySession(ctx, cookie)
	wantUnauthorized(t, err, "at expiry")
}

func TestSessionBadToken(t *testing.T) {
	e := newSessionEnv(t)
	for _, tok := range []string{"", "nonsense", e.token + "x", strings.Replace(e.token, ".", ".A", 1)} {
		_, cookie, err := e.svc.NewSession(context.Background(), tok, 0)
		wantUnauthorized(t, err, "NewSession with a bad token")
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
	_, err = e.svc.VerifySession(ctx, cookie)
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
		_, err := e.svc.VerifySession(ctx, base64.RawURLEncoding.EncodeToString(b))
		wantUnauthorized(t, err, "a flipped bit")
	}
	for n := range len(raw) {
		_, err := e.svc.VerifySession(ctx, base64.RawURLEncoding.EncodeToString(raw[:n]))
		wantUnauthorized(t, err, "a truncated cookie")
	}
	for _, c := range []string{"", "!!!", cookie + "A", cookie + "=", strings.Repeat("A", 10000), cookie[:len(cookie)-1]} {
		_, err := e.svc.VerifySession(ctx, c)
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
	bob, _, err := e.svc.NewSession(ctx, bobToken, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bob.UserID == e.userID {
		t.Fatal("bob is alice")
	}
	alice, _ := mustSession(t, e)
	if e.svc.CheckCSRF(alice.ID, e.svc.CSRFToken(bob.ID)) {
		t.Fatal("bob's CSRF token passes for alice's session")
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
	csrf := e.svc.CSRFToken(sess.ID)

	same := e.withKeys(t, k1)
	if _, err := same.VerifySession(ctx, cookie); err != nil {
		t.Fatalf("another service with the same key: %v", err)
	}
	if !same.CheckCSRF(sess.ID, csrf) {
		t.Fatal("another service with the same key refuses the CSRF token")
	}
	rotated := e.withKeys(t, k2, k1)
	_, err := rotated.VerifySession(ctx, cookie)
	wantUnauthorized(t, err, "after a key rotation")
	if rotated.CheckCSRF(sess.ID, csrf) {
		t.Fatal("CSRF token passes after a key rotation")
	}
}

func TestCSRF(t *testing.T) {
	e := newSessionEnv(t)
	sess, _ := mustSession(t, e)
	tok := e.svc.CSRFToken(sess.ID)
	if !e.svc.CheckCSRF(sess.ID, tok) {
		t.Fatal("the session's own CSRF token is refused")
	}
	if tok != e.svc.CSRFToken(sess.ID) {
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
		{"", e.svc.CSRFToken("")},
	} {
		if e.svc.CheckCSRF(c.sid, c.tok) {
			t.Errorf("CheckCSRF(%q, %q) = true", c.sid, c.tok)
		}
	}
}

func FuzzVerifySession(f *testing.F) {
	e := newSessionEnv(f)
	_, cookie, err := e.svc.NewSession(context.Background(), e.token, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cookie)
	f.Add("")
	f.Add(cookie[:len(cookie)/2])
	f.Fuzz(func(t *testing.T, c string) {
		sess, err := e.svc.VerifySession(context.Background(), c)
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
