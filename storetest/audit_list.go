package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

func testAuditList(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	bob := f.mustUser("bob")
	a1 := f.mustSecret(alice, "A1", value("1"))
	f.mustSecret(bob, "B1", value("1"))
	a2 := f.mustSecret(alice, "A2", value("2"))
	f.mustUpdateSecret(alice, a1.ID, vault.SecretPatch{Value: ptr(value("1b"))})
	f.mustProfile(bob, "bob's")
	f.mustUpdateSecret(alice, a1.ID, vault.SecretPatch{Description: ptr("d")})
	if _, _, err := f.svc.Authenticate(f.ctx, "tok_"+strings.Repeat("q", 21)+".x"); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatal(err)
	}
	if err := f.svc.FlushAuthFailures(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteSecret(f.ctx, alice, a2.ID); err != nil {
		t.Fatal(err)
	}

	var mine []*vault.AuditEvent
	for _, e := range chain(t, f.store) {
		if e.UserID == alice {
			mine = append(mine, e)
		}
	}
	slices.Reverse(mine)
	seqs := auditSeqs
	list := func(o vault.AuditOptions) []*vault.AuditEvent { return f.mustAuditList(alice, o) }
	filter := func(keep func(e *vault.AuditEvent) bool) []int64 {
		return auditSeqs(slices.DeleteFunc(slices.Clone(mine), func(e *vault.AuditEvent) bool { return !keep(e) }))
	}

	if got, want := seqs(list(vault.AuditOptions{})), seqs(mine); !slices.Equal(got, want) {
		t.Errorf("alice's events: %v, want %v (hers only, newest first)", got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{Limit: 2})), seqs(mine); !slices.Equal(got, want) {
		t.Errorf("alice's events by twos: %v, want %v", got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{Action: vault.ActionSecretUpdate, Limit: 1})),
		filter(func(e *vault.AuditEvent) bool { return e.Action == vault.ActionSecretUpdate }); !slices.Equal(got, want) || len(want) != 2 {
		t.Errorf("secret.update: %v, want %v", got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{TargetID: a1.ID})),
		filter(func(e *vault.AuditEvent) bool { return e.TargetID == a1.ID }); !slices.Equal(got, want) || len(want) != 3 {
		t.Errorf("target %s: %v, want %v", a1.ID, got, want)
	}
	mid := mine[len(mine)/2]
	if got, want := seqs(list(vault.AuditOptions{Since: mid.Time})),
		filter(func(e *vault.AuditEvent) bool { return !e.Time.Before(mid.Time) }); !slices.Equal(got, want) {
		t.Errorf("since %s: %v, want %v", mid.Time, got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{Until: mid.Time, Limit: 1})),
		filter(func(e *vault.AuditEvent) bool { return e.Time.Before(mid.Time) }); !slices.Equal(got, want) {
		t.Errorf("until %s: %v, want %v", mid.Time, got, want)
	}
	if got := list(vault.AuditOptions{TargetID: a1.ID, Action: vault.ActionSecretDelete}); len(got) != 0 {
		t.Errorf("a1 deleted: %v, want none", seqs(got))
	}
	// Bob sees none of alice's, and nobody sees the failed sign-in.
	page, err := f.svc.AuditEvents(f.ctx, bob, vault.AuditOptions{TargetID: a1.ID})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("bob filtering on alice's secret: %v, %v", seqs(page.Items), err)
	}
	page, err = f.svc.AuditEvents(f.ctx, bob, vault.AuditOptions{Action: vault.ActionAuthFailed})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("bob's failed sign-ins: %v, %v", seqs(page.Items), err)
	}

	f.wantAuditOptionsRefused(alice, mid)

}

// auditSeqs returns the seqs of list, in its order.
func auditSeqs(list []*vault.AuditEvent) []int64 {
	out := make([]int64, len(list))
	for i, e := range list {
		out[i] = e.Seq
	}
	return out
}

// mustAuditList walks every page of the user's events listed with o.
func (f *fixture) mustAuditList(userID string, o vault.AuditOptions) []*vault.AuditEvent {
	t := f.t
	t.Helper()
	var out []*vault.AuditEvent
	for range 100 {
		page, err := f.svc.AuditEvents(f.ctx, userID, o)
		if err != nil {
			t.Fatalf("list %+v: %v", o, err)
		}
		if len(page.Items) > max(o.Limit, 1) && o.Limit > 0 {
			t.Fatalf("page of %d items, limit %d", len(page.Items), o.Limit)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		o.Cursor = page.NextCursor
	}
	t.Fatal("pages never end")
	return nil
}

// wantAuditOptionsRefused checks that bad list options are refused, each
// naming its field; mid is one of alice's events.
func (f *fixture) wantAuditOptionsRefused(alice string, mid *vault.AuditEvent) {
	t := f.t
	t.Helper()
	f.mustSecret(alice, "A3", value("3"))
	secrets, err := f.svc.Secrets(f.ctx, alice, vault.ListOptions{Limit: 1})
	if err != nil || secrets.NextCursor == "" {
		t.Fatalf("secrets page: %v", err)
	}
	for _, tc := range []struct {
		o     vault.AuditOptions
		field string
	}{
		{vault.AuditOptions{Action: "secret.read"}, "action"},
		{vault.AuditOptions{Cursor: "nope"}, "cursor"},
		{vault.AuditOptions{Cursor: secrets.NextCursor}, "cursor"},
		{vault.AuditOptions{Limit: vault.MaxPageLimit + 1}, "limit"},
		{vault.AuditOptions{TargetID: strings.Repeat("x", 200)}, "target"},
		{vault.AuditOptions{TargetID: "a\x00b"}, "target"},
		{vault.AuditOptions{Since: mid.Time, Until: mid.Time}, "until"},
	} {
		_, err := f.svc.AuditEvents(f.ctx, alice, tc.o)
		wantErr(t, err, vault.EINVALID, tc.field)
	}
}
