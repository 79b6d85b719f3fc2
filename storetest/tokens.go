package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// tokenTests are the suite of API tokens: what a store keeps of a token,
// in which order it lists them, the last use it writes, and revocation.
var tokenTests = []test{
	{name: "RoundTrip", fn: testTokenRoundTrip},
	{name: "LastUse", fn: testTokenLastUse},
	{name: "Revoke", fn: testTokenRevoke},
	{name: "LastFullToken", fn: testLastFullToken},
}

func (f *fixture) mustIssue(userID string, spec vault.TokenSpec) (*vault.Token, string) {
	f.t.Helper()
	t, token, err := f.svc.IssueToken(f.ctx, userID, spec)
	if err != nil {
		f.t.Fatalf("issue token %s: %v", spec.Name, err)
	}
	return t, token
}

func (f *fixture) mustTokens(userID string) []*vault.Token {
	f.t.Helper()
	list, err := f.svc.Tokens(f.ctx, userID)
	if err != nil {
		f.t.Fatalf("list tokens: %v", err)
	}
	return list
}

func tokenIDs(list []*vault.Token) []string {
	ids := make([]string, len(list))
	for i, t := range list {
		ids[i] = t.ID
	}
	return ids
}

// wantSameToken fails unless got is want as stored: every field, times to
// the microsecond, in UTC.
func wantSameToken(t *testing.T, got, want *vault.Token) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Name != want.Name || got.Scope != want.Scope ||
		string(got.Hash) != string(want.Hash) || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.LastUsedAt.Equal(want.LastUsedAt) {
		t.Fatalf("token read back:\n got %+v\nwant %+v", got, want)
	}
	for _, tm := range []time.Time{got.CreatedAt, got.ExpiresAt, got.LastUsedAt} {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Fatalf("a time of token %s is in %v, want UTC", got.ID, tm.Location())
		}
	}
}

// testTokenRoundTrip: a token reads back as issued, from Store.Token and
// from the user's list, oldest first; the first token is a full token
// named "initial"; another user's list holds none of them.
func testTokenRoundTrip(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	first := f.mustTokens(alice)
	if len(first) != 1 || first[0].Name != vault.InitialTokenName || first[0].Scope != vault.TokenFull ||
		!first[0].ExpiresAt.IsZero() || !first[0].LastUsedAt.IsZero() {
		t.Fatalf("a new user's tokens: %+v", first)
	}
	expires := base.Add(48 * time.Hour).Add(123456789 * time.Nanosecond)
	ro, _ := f.mustIssue(alice, vault.TokenSpec{Name: "  ci  ", Scope: vault.TokenRead, ExpiresAt: expires})
	tk, _ := f.mustIssue(alice, vault.TokenSpec{Name: "runner ☂", Scope: vault.TokenTasks})
	if ro.Name != "ci" || !ro.ExpiresAt.Equal(expires.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("issued: name %q, expires %v", ro.Name, ro.ExpiresAt)
	}
	for _, want := range []*vault.Token{ro, tk} {
		got, err := f.store.Token(f.ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantSameToken(t, got, want)
	}
	list := f.mustTokens(alice)
	if !slices.Equal(tokenIDs(list), []string{first[0].ID, ro.ID, tk.ID}) {
		t.Fatalf("list order: %v", tokenIDs(list))
	}
	wantSameToken(t, list[1], ro)
	if l := f.mustTokens(bob); len(l) != 1 || l[0].UserID != bob {
		t.Fatalf("bob's tokens: %+v", l)
	}
	// Bad specs change nothing.
	for _, spec := range []vault.TokenSpec{
		{Name: "", Scope: vault.TokenFull}, {Name: "x", Scope: "admin"},
		{Name: "x", Scope: vault.TokenFull, ExpiresAt: base.Add(-time.Hour)},
	} {
		if _, _, err := f.svc.IssueToken(f.ctx, alice, spec); vault.ErrorCode(err) != vault.EINVALID {
			t.Fatalf("issue %+v: %v, want %s", spec, err, vault.EINVALID)
		}
	}
	if _, _, err := f.svc.IssueToken(f.ctx, vault.NewID(vault.PrefixUser), vault.TokenSpec{Name: "x", Scope: vault.TokenFull}); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("issue for no user: %v", err)
	}
	if n := len(f.mustTokens(alice)); n != 3 {
		t.Fatalf("%d tokens after refused issues, want 3", n)
	}
}

// testTokenLastUse: the first use writes last_used_at; uses within
// vault.TokenTouchInterval write nothing more; TouchToken never moves it
// back and ignores a token that is gone.
func testTokenLastUse(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	tok, token := f.mustIssue(alice, vault.TokenSpec{Name: "t", Scope: vault.TokenRead})
	cred, err := f.svc.AuthenticateToken(f.ctx, token)
	if err != nil || cred.UserID != alice || cred.TokenID != tok.ID || cred.Scope != vault.TokenRead {
		t.Fatalf("authenticate: %+v, %v", cred, err)
	}
	read := func() time.Time {
		t.Helper()
		got, err := f.store.Token(f.ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsedAt
	}
	used := read()
	if used.IsZero() || used.Before(tok.CreatedAt) {
		t.Fatalf("last use after the first use: %v (created %v)", used, tok.CreatedAt)
	}
	for range 3 {
		if _, err := f.svc.AuthenticateToken(f.ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	if again := read(); !again.Equal(used) {
		t.Fatalf("uses within the touch interval wrote last use %v, was %v", again, used)
	}
	if err := f.store.TouchToken(f.ctx, alice, tok.ID, used.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again := read(); !again.Equal(used) {
		t.Fatalf("an earlier touch moved last use back to %v", again)
	}
	later := used.Add(2 * time.Minute)
	if err := f.store.TouchToken(f.ctx, alice, tok.ID, later); err != nil {
		t.Fatal(err)
	}
	if again := read(); !again.Equal(later) {
		t.Fatalf("touch: last use %v, want %v", again, later)
	}
	bob := f.mustUser("bob")
	if err := f.store.TouchToken(f.ctx, bob, tok.ID, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again := read(); !again.Equal(later) {
		t.Fatalf("bob's touch of alice's token wrote %v", again)
	}
	if err := f.store.TouchToken(f.ctx, alice, vault.NewID(vault.PrefixToken), later); err != nil {
		t.Fatalf("touch of a token that is gone: %v", err)
	}
}

// testTokenRevoke: a revoked token is gone from the store and refused,
// the service's cache included; another user cannot revoke it; its
// revocation is audited.
func testTokenRevoke(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	tok, token := f.mustIssue(alice, vault.TokenSpec{Name: "leaked", Scope: vault.TokenFull})
	if _, err := f.svc.AuthenticateToken(f.ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeToken(f.ctx, bob, tok.ID, ""); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("bob revokes alice's token: %v, want %s", err, vault.ENOTFOUND)
	}
	if _, err := f.svc.AuthenticateToken(f.ctx, token); err != nil {
		t.Fatalf("after bob's refused revocation: %v", err)
	}
	if err := f.svc.RevokeToken(f.ctx, alice, tok.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Token(f.ctx, tok.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("revoked token read: %v", err)
	}
	if _, err := f.svc.AuthenticateToken(f.ctx, token); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("revoked token authenticates: %v", err)
	}
	if err := f.svc.RevokeToken(f.ctx, alice, tok.ID, ""); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("second revocation: %v", err)
	}
	events := f.mustAuditList(alice, vault.AuditOptions{Action: vault.ActionTokenRevoke})
	if len(events) != 1 || events[0].TargetID != tok.ID || events[0].Details["name"] != "leaked" || events[0].Details["scope"] != "full" {
		t.Fatalf("token.revoke events: %+v", events)
	}
}

// testLastFullToken: the user's last unexpired full token is revoked only
// with the confirmation; an expired full token does not count as another.
func testLastFullToken(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	initial := f.mustTokens(alice)[0]
	f.mustIssue(alice, vault.TokenSpec{Name: "ro", Scope: vault.TokenRead})
	soon, _ := f.mustIssue(alice, vault.TokenSpec{Name: "soon", Scope: vault.TokenFull, ExpiresAt: base.Add(time.Second)})
	// soon expires: the fixture's clock moves on by ~1 ms a reading.
	for range 1100 {
		f.now()
	}
	err := f.svc.RevokeToken(f.ctx, alice, initial.ID, "")
	if vault.ErrorCode(err) != vault.ECONFLICT || vault.ErrorField(err) != "confirm" {
		t.Fatalf("revoke the last full token: %v, want %s on confirm", err, vault.ECONFLICT)
	}
	if n := len(f.mustTokens(alice)); n != 3 {
		t.Fatalf("a refused revocation left %d tokens", n)
	}
	if err := f.svc.RevokeToken(f.ctx, alice, soon.ID, ""); err != nil {
		t.Fatalf("revoke an expired full token: %v", err)
	}
	if err := f.svc.RevokeToken(f.ctx, alice, initial.ID, vault.ConfirmLastFullToken); err != nil {
		t.Fatalf("confirmed: %v", err)
	}
	if l := f.mustTokens(alice); len(l) != 1 || l[0].Scope != vault.TokenRead {
		t.Fatalf("left: %+v", l)
	}
}
