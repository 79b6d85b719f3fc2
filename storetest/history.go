package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/envvault/envvault/vault"
)

// historyTests are the suite of secret history: the versions kept of each
// secret's value, and rollback.
var historyTests = []test{
	{name: "KeepsPreviousValues", opts: vault.Options{KeepVersions: 3}, fn: testHistoryKeepsPreviousValues},
	{name: "DefaultKeepsTen", fn: testHistoryDefaultKeepsTen},
	{name: "OnlyValueChangesKeep", fn: testHistoryOnlyValueChangesKeep},
	{name: "Rollback", opts: vault.Options{KeepVersions: 3}, fn: testHistoryRollback},
	{name: "RollbackAfterRename", fn: testHistoryRollbackAfterRename},
	{name: "RollbackRefusals", opts: vault.Options{KeepVersions: 2}, fn: testHistoryRollbackRefusals},
	{name: "Actors", fn: testHistoryActors},
	{name: "OtherUsersHistoryIsInvisible", fn: testHistoryOtherUsers},
	{name: "DeletingASecretDeletesItsVersions", fn: testHistoryDeleteSecret},
	{name: "FailedChangeKeepsNothing", fn: testHistoryFailedChangeKeepsNothing},
	{name: "StoreRoundTrip", fn: testHistoryStoreRoundTrip},
	{name: "RacingValueChanges", opts: vault.Options{KeepVersions: 5}, fn: testHistoryRacingValueChanges},
}

func (f *fixture) mustVersions(userID, id string) []vault.SecretVersion {
	f.t.Helper()
	vs, err := f.svc.SecretVersions(f.ctx, userID, id)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("versions of secret %s: %v", id, err)
	}
	if s := fmt.Sprintf("%+v", vs); strings.Contains(s, canary) {
		f.t.Errorf("versions of secret %s hold a value", id)
	}
	return vs
}

// wantVersions checks that the secret's versions are the current one, then
// the kept ones, newest first, by number; it returns them.
func (f *fixture) wantVersions(userID, id string, current int, kept ...int) []vault.SecretVersion {
	f.t.Helper()
	vs := f.mustVersions(userID, id)
	got := make([]int, len(vs))
	for i, v := range vs {
		got[i] = v.Version
		if v.Current != (i == 0) {
			f.t.Errorf("version %d (entry %d of secret %s): current %v", v.Version, i, id, v.Current)
		}
	}
	if want := append([]int{current}, kept...); !slices.Equal(got, want) {
		f.t.Errorf("versions of secret %s: got %v, want %v (current first, newest first)", id, got, want)
	}
	if n := f.mustCountVersions(id); n != len(kept) {
		f.t.Errorf("secret %s: %d rows in secret_versions, want %d", id, n, len(kept))
	}
	return vs
}

func (f *fixture) mustCountVersions(id string) int {
	f.t.Helper()
	n, err := f.h.QueryInt(f.ctx, `SELECT count(*) FROM secret_versions WHERE secret_id = ?`, id)
	if err != nil {
		f.t.Fatalf("count versions of %s: %v", id, err)
	}
	return int(n)
}

func testHistoryKeepsPreviousValues(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	s := f.mustSecret(user, "API_KEY", value("v1"))
	vs := f.wantVersions(user, s.ID, 1)
	wantTime(t, "version 1 created_at", vs[0].CreatedAt, s.CreatedAt)
	if !vs[0].ReplacedAt.IsZero() {
		t.Errorf("the current version has replaced_at %s", vs[0].ReplacedAt)
	}

	saved := map[int]*vault.Secret{1: s}
	for v := 2; v <= 6; v++ {
		saved[v] = f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint("v", v)))})
		if saved[v].Version != v {
			t.Fatalf("value change %d gave version %d", v, saved[v].Version)
		}
		var kept []int
		for k := v - 1; k >= max(1, v-3); k-- {
			kept = append(kept, k)
		}
		f.wantVersions(user, s.ID, v, kept...)
	}
	f.wantEnv(user, p.ID, map[string]string{"API_KEY": value("v6")})

	// Each entry says when its value was saved and when it was replaced.
	vs = f.wantVersions(user, s.ID, 6, 5, 4, 3)
	wantTime(t, "current created_at", vs[0].CreatedAt, saved[6].UpdatedAt)
	for _, v := range vs[1:] {
		wantTime(t, fmt.Sprint("version ", v.Version, " created_at"), v.CreatedAt, saved[v.Version].UpdatedAt)
		wantTime(t, fmt.Sprint("version ", v.Version, " replaced_at"), v.ReplacedAt, saved[v.Version+1].UpdatedAt)
	}
	// A kept version is the sealed row as it was.
	for v := 3; v <= 5; v++ {
		k := f.mustKept(user, s.ID, v)
		if k.Name != "API_KEY" || k.UserID != user || k.SecretID != s.ID || k.Version != v ||
			!bytes.Equal(k.SealedValue, saved[v].SealedValue) || !bytes.Equal(k.SealedKey, saved[v].SealedKey) ||
			k.MasterKeyID != saved[v].MasterKeyID {
			t.Errorf("kept version %d is not the row it replaced: name %s, user %s, secret %s, version %d", v, k.Name, k.UserID, k.SecretID, k.Version)
		}
	}
}

func testHistoryDefaultKeepsTen(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	s := f.mustSecret(user, "API_KEY", value("v1"))
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value("v2"))})
	vs := f.wantVersions(user, s.ID, 2, 1)
	// The first value's time is the secret's creation.
	wantTime(t, "version 1 created_at", vs[1].CreatedAt, s.CreatedAt)
	for v := 3; v <= 13; v++ {
		f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint("v", v)))})
	}
	f.wantVersions(user, s.ID, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3)
	if vault.DefaultKeepVersions != 10 {
		t.Errorf("DefaultKeepVersions is %d, the README says 10", vault.DefaultKeepVersions)
	}
}

func testHistoryOnlyValueChangesKeep(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	s := f.mustSecret(user, "OLD", value("v1"))
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Name: ptr("NEW")})
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Description: ptr("described")})
	agents := vault.ScopeAgents
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Scope: &agents, ProfileIDs: []string{p.ID}, SetProfileIDs: true})
	f.wantVersions(user, s.ID, 1)

	// A rename with a new value keeps the old value under the old name.
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Name: ptr("THIRD"), Value: ptr(value("v2"))})
	f.wantVersions(user, s.ID, 2, 1)
	if k := f.mustKept(user, s.ID, 1); k.Name != "NEW" {
		t.Errorf("kept version 1 has name %s, want NEW, the name its value was sealed under", k.Name)
	}
	f.wantEnv(user, p.ID, map[string]string{"THIRD": value("v2")})
}

func testHistoryActors(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	as := func(tokenID string) context.Context {
		return vault.WithActor(f.ctx, vault.Actor{UserID: user, TokenID: tokenID})
	}
	s := f.mustSecret(user, "API_KEY", value("v1"))
	if _, err := f.svc.UpdateSecret(as("tok_first"), user, s.ID, vault.SecretPatch{Value: ptr(value("v2"))}); err != nil {
		t.Fatal(err)
	}
	vs := f.wantVersions(user, s.ID, 2, 1)
	if vs[0].ActorTokenID != "tok_first" || vs[1].ActorTokenID != "" || vs[1].ReplacedByTokenID != "tok_first" {
		t.Errorf("after the first change: %+v", vs)
	}
	// A change without a token (the operator's command line) is kept with
	// no actor.
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value("v3"))})
	if _, err := f.svc.RollbackSecret(as("tok_second"), user, s.ID, 1); err != nil {
		t.Fatal(err)
	}
	vs = f.wantVersions(user, s.ID, 4, 3, 2, 1)
	want := []struct{ actor, replacedBy string }{{"tok_second", ""}, {"", "tok_second"}, {"tok_first", ""}, {"", "tok_first"}}
	for i, w := range want {
		if vs[i].ActorTokenID != w.actor || vs[i].ReplacedByTokenID != w.replacedBy {
			t.Errorf("version %d: actor %q replaced by %q, want %q and %q", vs[i].Version, vs[i].ActorTokenID, vs[i].ReplacedByTokenID, w.actor, w.replacedBy)
		}
	}
}

func testHistoryOtherUsers(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	s := f.mustSecret(alice, "API_KEY", value("alice-1"))
	f.mustUpdateSecret(alice, s.ID, vault.SecretPatch{Value: ptr(value("alice-2"))})
	bobs := f.mustSecret(bob, "API_KEY", value("bob-1"))
	f.mustUpdateSecret(bob, bobs.ID, vault.SecretPatch{Value: ptr(value("bob-2"))})

	_, err := f.svc.SecretVersions(f.ctx, bob, s.ID)
	wantErr(t, err, vault.ENOTFOUND, "")
	_, never := f.svc.SecretVersions(f.ctx, bob, vault.NewID(vault.PrefixSecret))
	if vault.ErrorMessage(err) != vault.ErrorMessage(never) {
		t.Errorf("another user's secret answers %q, an unknown one %q", vault.ErrorMessage(err), vault.ErrorMessage(never))
	}
	_, err = f.svc.RollbackSecret(f.ctx, bob, s.ID, 1)
	wantErr(t, err, vault.ENOTFOUND, "")
	// Bob's own secret's version 1 is no key to Alice's.
	_, err = f.svc.RollbackSecret(f.ctx, alice, bobs.ID, 1)
	wantErr(t, err, vault.ENOTFOUND, "")

	// The store, asked directly in Bob's transaction, sees nothing of Alice's.
	err = f.store.Update(f.ctx, bob, func(tx vault.Tx) error {
		if vs, err := tx.SecretVersions(f.ctx, s.ID); err != nil || len(vs) != 0 {
			t.Errorf("SecretVersions of another user's secret: %v, %v", vs, err)
		}
		_, err := tx.KeptVersion(f.ctx, s.ID, 1)
		wantErr(t, err, vault.ENOTFOUND, "")
		// Deleting Alice's versions from Bob's transaction deletes nothing
		// (counted below).
		return tx.DeleteVersions(f.ctx, s.ID, []int{1, 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := f.svc.Secret(f.ctx, bob, bobs.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Bob's sealed row, filed as a version of Alice's secret; then Alice's
	// user id in Bob's transaction, refused too. A write's error may come
	// from its call or from the commit (vault.Tx), so each is Update's.
	keep := func(owner string) error {
		return f.store.Update(f.ctx, bob, func(tx vault.Tx) error {
			return tx.KeepVersion(f.ctx, &vault.KeptVersion{
				SecretID: s.ID, UserID: owner, Version: 7, Name: sec.Name, SealedValue: sec.SealedValue,
				SealedKey: sec.SealedKey, MasterKeyID: sec.MasterKeyID, ReplacedAt: sec.UpdatedAt,
			})
		})
	}
	err = keep(bob)
	wantErr(t, err, vault.ENOTFOUND, "")
	noCanary(t, err)
	if err = keep(alice); err == nil {
		t.Error("KeepVersion stored a version of another user in this user's transaction")
	}
	noCanary(t, err)
	f.wantVersions(alice, s.ID, 2, 1)
	f.wantVersions(bob, bobs.ID, 2, 1)
	if k := f.mustKept(alice, s.ID, 1); k.UserID != alice {
		t.Errorf("Alice's kept version has user %s", k.UserID)
	}
}

func testHistoryDeleteSecret(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	s := f.mustSecret(user, "API_KEY", value("v1"))
	keep := f.mustSecret(user, "KEEP", value("k1"))
	for v := 2; v <= 4; v++ {
		f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint("v", v)))})
		f.mustUpdateSecret(user, keep.ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint("k", v)))})
	}
	f.wantVersions(user, s.ID, 4, 3, 2, 1)
	if err := f.svc.DeleteSecret(f.ctx, user, s.ID); err != nil {
		t.Fatal(err)
	}
	if n := f.mustCountVersions(s.ID); n != 0 {
		t.Errorf("%d kept versions outlive their secret", n)
	}
	_, err := f.svc.SecretVersions(f.ctx, user, s.ID)
	wantErr(t, err, vault.ENOTFOUND, "")
	_, err = f.svc.RollbackSecret(f.ctx, user, s.ID, 3)
	wantErr(t, err, vault.ENOTFOUND, "")
	f.wantVersions(user, keep.ID, 4, 3, 2, 1)

	// A new secret of the same name starts a history of its own.
	again := f.mustSecret(user, "API_KEY", value("again"))
	f.wantVersions(user, again.ID, 1)
}

func testHistoryFailedChangeKeepsNothing(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	f.mustSecret(user, "TAKEN", value("taken"))
	s := f.mustSecret(user, "MINE", value("v1"))
	_, err := f.svc.UpdateSecret(f.ctx, user, s.ID, vault.SecretPatch{Name: ptr("TAKEN"), Value: ptr(value("v2"))})
	wantErr(t, err, vault.ECONFLICT, "name")
	_, err = f.svc.UpdateSecret(f.ctx, user, s.ID, vault.SecretPatch{Value: ptr(value("v2")), ProfileIDs: []string{p.ID}, SetProfileIDs: true})
	wantErr(t, err, vault.EINVALID, "profile_ids")
	_, err = f.svc.UpdateSecret(f.ctx, user, s.ID, vault.SecretPatch{Value: ptr("")})
	wantErr(t, err, vault.EINVALID, "value")
	f.wantVersions(user, s.ID, 1)
	f.wantEnv(user, p.ID, map[string]string{"TAKEN": value("taken"), "MINE": value("v1")})
}

func testHistoryRacingValueChanges(t *testing.T, f *fixture) {
	const racers, changes = 4, 6
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	s := f.mustSecret(user, "RACED", value("v0"))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			for j := range changes {
				if _, err := f.svc.UpdateSecret(f.ctx, user, s.ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint(i, "-", j)))}); err != nil {
					noCanary(t, err)
					t.Errorf("racer %d change %d: %v", i, j, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	const last = 1 + racers*changes
	vs := f.wantVersions(user, s.ID, last, last-1, last-2, last-3, last-4, last-5)
	// Every kept version opens: rolling back to the oldest restores a value
	// some racer wrote.
	f.mustRollback(user, s.ID, vs[len(vs)-1].Version)
	env := f.mustEnv(user, p.ID)
	if v := strings.TrimPrefix(env["RACED"], canary+":"); !strings.Contains(v, "-") {
		t.Errorf("rolled back to %q, not a racer's value", v)
	}
}
