package storetest

import (
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// sessionTests are the suite of dashboard sessions: a session holds while
// its row does, and sign-out, revoking its token, expiry and idleness all
// end it.
var sessionTests = []test{
	{name: "Lifecycle", fn: testSessionLifecycle},
	{name: "EndedByTokenRevocation", fn: testSessionEndedByRevocation},
	{name: "Timeouts", fn: testSessionTimeouts},
}

// mustSession signs userID's token in and returns the session.
func (f *fixture) mustSession(token string, ttl time.Duration) *vault.Session {
	f.t.Helper()
	s, err := f.svc.OpenSession(f.ctx, token, ttl)
	if err != nil {
		f.t.Fatalf("open session: %v", err)
	}
	return s
}

// testSessionLifecycle: a session reads back as opened, by its key (the
// store never sees the id), for its user only; sign-out ends it; a token
// of another scope than full cannot open one.
func testSessionLifecycle(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	tok, token := f.mustIssue(alice, vault.TokenSpec{Name: "web", Scope: vault.TokenFull})
	s := f.mustSession(token, time.Hour)
	if s.UserID != alice || s.TokenID != tok.ID || len(s.ID) < 20 {
		t.Fatalf("session: %+v", s)
	}
	stored, err := f.store.Session(f.ctx, alice, vault.SessionKey(s.ID))
	if err != nil {
		t.Fatal(err)
	}
	if stored.ID != vault.SessionKey(s.ID) || stored.TokenID != tok.ID || !stored.CreatedAt.Equal(s.CreatedAt) ||
		!stored.LastSeenAt.Equal(s.LastSeenAt) || !stored.ExpiresAt.Equal(s.ExpiresAt) || stored.ExpiresAt.Location() != time.UTC {
		t.Fatalf("stored session:\n got %+v\nwant %+v", stored, s)
	}
	if n, err := f.h.QueryInt(f.ctx, `SELECT count(*) FROM sessions WHERE id = ?`, s.ID); err != nil || n != 0 {
		t.Fatalf("a session row keyed by the cookie's id: %d, %v", n, err)
	}
	if _, err := f.store.Session(f.ctx, bob, vault.SessionKey(s.ID)); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("bob reads alice's session: %v", err)
	}
	if _, err := f.svc.CheckSession(f.ctx, bob, s.ID, time.Hour); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("alice's session checked as bob's: %v", err)
	}
	if got, err := f.svc.CheckSession(f.ctx, alice, s.ID, time.Hour); err != nil || got.TokenID != tok.ID {
		t.Fatalf("check: %+v, %v", got, err)
	}
	if err := f.svc.CloseSession(f.ctx, alice, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CheckSession(f.ctx, alice, s.ID, time.Hour); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("after sign-out: %v", err)
	}
	if err := f.svc.CloseSession(f.ctx, alice, s.ID); err != nil {
		t.Fatalf("second sign-out: %v", err)
	}
	for _, scope := range []vault.TokenScope{vault.TokenRead, vault.TokenTasks} {
		_, other := f.mustIssue(alice, vault.TokenSpec{Name: string(scope), Scope: scope})
		if _, err := f.svc.OpenSession(f.ctx, other, time.Hour); vault.ErrorCode(err) != vault.EFORBIDDEN {
			t.Fatalf("open a session with a %s token: %v, want %s", scope, err, vault.EFORBIDDEN)
		}
	}
	if _, err := f.svc.OpenSession(f.ctx, token+"x", time.Hour); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("open a session with a wrong token: %v", err)
	}
}

// testSessionEndedByRevocation: revoking a token ends every session
// opened with it, and no other.
func testSessionEndedByRevocation(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	tok, token := f.mustIssue(alice, vault.TokenSpec{Name: "web", Scope: vault.TokenFull})
	_, keep := f.mustIssue(alice, vault.TokenSpec{Name: "keep", Scope: vault.TokenFull})
	s1, s2 := f.mustSession(token, time.Hour), f.mustSession(token, time.Hour)
	kept := f.mustSession(keep, time.Hour)
	if err := f.svc.RevokeToken(f.ctx, alice, tok.ID, ""); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*vault.Session{s1, s2} {
		if _, err := f.svc.CheckSession(f.ctx, alice, s.ID, time.Hour); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
			t.Fatalf("a session of a revoked token: %v", err)
		}
	}
	if _, err := f.svc.CheckSession(f.ctx, alice, kept.ID, time.Hour); err != nil {
		t.Fatalf("a session of another token: %v", err)
	}
	// A session cannot be made for a token that is gone.
	gone := &vault.Session{ID: vault.SessionKey("x"), UserID: alice, TokenID: tok.ID, CreatedAt: s1.CreatedAt,
		LastSeenAt: s1.CreatedAt, ExpiresAt: s1.ExpiresAt}
	if err := f.store.CreateSession(f.ctx, gone); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("a session of a revoked token inserted: %v", err)
	}
}

// testSessionTimeouts: a session ends at its absolute expiry (the token's
// expiry if sooner) and after the idle time, and its row goes; a new
// session deletes the user's expired ones; a touch only moves forward.
func testSessionTimeouts(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	_, token := f.mustIssue(alice, vault.TokenSpec{Name: "web", Scope: vault.TokenFull})
	short := f.mustSession(token, time.Second)
	idle := f.mustSession(token, time.Hour)
	count := func() int64 {
		t.Helper()
		n, err := f.h.QueryInt(f.ctx, `SELECT count(*) FROM sessions WHERE user_id = ?`, alice)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	if _, err := f.svc.CheckSession(f.ctx, alice, idle.ID, 50*time.Millisecond); err != nil {
		t.Fatalf("a fresh session: %v", err)
	}
	for range 1100 { // the clock moves on ~1.1 s
		f.now()
	}
	if _, err := f.svc.CheckSession(f.ctx, alice, short.ID, time.Hour); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("an expired session: %v", err)
	}
	if _, err := f.svc.CheckSession(f.ctx, alice, idle.ID, 50*time.Millisecond); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("an idle session: %v", err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d rows of ended sessions left after their checks", n)
	}
	// A session that expired unchecked goes with the next sign-in.
	f.mustSession(token, time.Second)
	for range 1100 {
		f.now()
	}
	last := f.mustSession(token, time.Hour)
	if n := count(); n != 1 {
		t.Fatalf("%d sessions after a sign-in, want the new one only", n)
	}
	key := vault.SessionKey(last.ID)
	later := last.LastSeenAt.Add(time.Minute)
	if err := f.store.TouchSession(f.ctx, alice, key, later); err != nil {
		t.Fatal(err)
	}
	if err := f.store.TouchSession(f.ctx, alice, key, last.LastSeenAt); err != nil {
		t.Fatal(err)
	}
	if s, err := f.store.Session(f.ctx, alice, key); err != nil || !s.LastSeenAt.Equal(later) {
		t.Fatalf("after touches: %+v, %v; want last seen %v", s, err, later)
	}
	// A token that expires sooner than the session's TTL bounds it.
	exp := base.Add(time.Hour)
	_, expiring := f.mustIssue(alice, vault.TokenSpec{Name: "exp", Scope: vault.TokenFull, ExpiresAt: exp})
	if s := f.mustSession(expiring, 24*time.Hour); !s.ExpiresAt.Equal(exp.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("a session of a token expiring at %v expires at %v", exp, s.ExpiresAt)
	}
}
