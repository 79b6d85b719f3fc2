package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

func (f *fixture) mustRollback(userID, id string, version int) *vault.Secret {
	f.t.Helper()
	s, err := f.svc.RollbackSecret(f.ctx, userID, id, version)
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("roll back secret %s to version %d: %v", id, version, err)
	}
	checkSealed(f.t, s)
	return s
}

// mustKept reads one kept version straight from the store.
func (f *fixture) mustKept(userID, id string, version int) *vault.KeptVersion {
	f.t.Helper()
	var k *vault.KeptVersion
	err := f.store.View(f.ctx, userID, func(tx vault.Tx) (err error) {
		k, err = tx.KeptVersion(f.ctx, id, version)
		return err
	})
	if err != nil {
		noCanary(f.t, err)
		f.t.Fatalf("read kept version %d of %s: %v", version, id, err)
	}
	if bytes.Contains(k.SealedValue, []byte(canary)) || bytes.Contains(k.SealedKey, []byte(canary)) {
		f.t.Errorf("kept version %d of %s holds its value unsealed", version, id)
	}
	return k
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

func testHistoryRollback(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2 := f.mustProfile(user, "p1"), f.mustProfile(user, "p2")
	s := f.mustSecret(user, "DB_URL", value("v1"), p1)
	other := f.mustSecret(user, "OTHER", value("other"))
	for v := 2; v <= 4; v++ {
		f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint("v", v)))})
	}
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Description: ptr("kept through rollback")})
	f.wantEnv(user, p1.ID, map[string]string{"DB_URL": value("v4"), "OTHER": value("other")})

	before := f.mustGetSecret(user, s.ID)
	back := f.mustRollback(user, s.ID, 2)
	if back.Version != 5 || back.Name != "DB_URL" || back.Scope != vault.ScopeAgents ||
		!slices.Equal(back.ProfileIDs, []string{p1.ID}) || back.Description != "kept through rollback" {
		t.Errorf("rolled back secret: %+v", back)
	}
	if bytes.Equal(back.SealedKey, before.SealedKey) || !back.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("a rollback kept the data key or the update time")
	}
	wantTime(t, "created_at after rollback", back.CreatedAt, s.CreatedAt)
	sameSecret(t, f.mustGetSecret(user, s.ID), back)
	// The value, as a task receives it, is version 2's again.
	f.wantEnv(user, p1.ID, map[string]string{"DB_URL": value("v2"), "OTHER": value("other")})
	f.wantEnv(user, p2.ID, map[string]string{"OTHER": value("other")})
	// The replaced value is kept in turn (and the oldest, 1, is pruned).
	vs := f.wantVersions(user, s.ID, 5, 4, 3, 2)
	wantTime(t, "rolled-back version created_at", vs[0].CreatedAt, back.UpdatedAt)
	wantTime(t, "version 4 replaced_at", vs[1].ReplacedAt, back.UpdatedAt)
	ds, err := f.svc.ProfileSecrets(f.ctx, user, p1.ID)
	if err != nil || len(ds) != 2 || ds[0].SecretID != s.ID || ds[0].Version != 5 {
		t.Errorf("profile secrets after rollback: %+v, %v", ds, err)
	}

	// Rolling back to the version that was current restores it.
	f.mustRollback(user, s.ID, 4)
	f.wantEnv(user, p1.ID, map[string]string{"DB_URL": value("v4"), "OTHER": value("other")})
	f.wantVersions(user, s.ID, 6, 5, 4, 3)
	// And the rolled-back value can itself be rolled back to.
	f.mustRollback(user, s.ID, 5)
	f.wantEnv(user, p1.ID, map[string]string{"DB_URL": value("v2"), "OTHER": value("other")})
	f.wantVersions(user, s.ID, 7, 6, 5, 4)
	sameSecret(t, f.mustGetSecret(user, other.ID), other)
	f.wantVersions(user, other.ID, 1)
}

func testHistoryRollbackAfterRename(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	s := f.mustSecret(user, "OLD_NAME", value("a"))
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value("b"))})
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Name: ptr("NEW_NAME")})
	f.wantVersions(user, s.ID, 2, 1)
	if k := f.mustKept(user, s.ID, 1); k.Name != "OLD_NAME" {
		t.Fatalf("kept version 1 has name %s, want OLD_NAME", k.Name)
	}

	// Version 1 opens under its own name and is sealed again for the new one.
	back := f.mustRollback(user, s.ID, 1)
	if back.Name != "NEW_NAME" || back.Version != 3 {
		t.Errorf("rolled back: name %s version %d", back.Name, back.Version)
	}
	f.wantEnv(user, p.ID, map[string]string{"NEW_NAME": value("a")})
	f.wantVersions(user, s.ID, 3, 2, 1)
	if k := f.mustKept(user, s.ID, 2); k.Name != "NEW_NAME" {
		t.Errorf("kept version 2 has name %s, want NEW_NAME (the rename resealed it)", k.Name)
	}

	// The restored value is bound to the new name: the same sealed bytes
	// under the old name do not open.
	rename := func(name string) {
		t.Helper()
		err := f.store.Update(f.ctx, user, func(tx vault.Tx) error {
			cur, err := tx.Secret(f.ctx, s.ID)
			if err != nil {
				return err
			}
			cur.Name = name
			return tx.UpdateSecret(f.ctx, cur)
		})
		if err != nil {
			t.Fatalf("write the row under name %s: %v", name, err)
		}
	}
	rename("OLD_NAME")
	_, err := f.svc.GetDecryptedForProfile(f.ctx, user, p.ID)
	if !errors.Is(err, vault.ErrDecrypt) {
		t.Errorf("the restored value opened under the old name: %v", err)
	}
	noCanary(t, err)
	rename("NEW_NAME")
	f.wantEnv(user, p.ID, map[string]string{"NEW_NAME": value("a")})

	// Two renames later, version 2 (sealed under NEW_NAME) still opens.
	f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Name: ptr("THIRD_NAME")})
	f.mustRollback(user, s.ID, 2)
	f.wantEnv(user, p.ID, map[string]string{"THIRD_NAME": value("b")})
	f.wantVersions(user, s.ID, 4, 3, 2, 1)
}

func testHistoryRollbackRefusals(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	s := f.mustSecret(user, "API_KEY", value("v1"))
	for v := 2; v <= 4; v++ {
		f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint("v", v)))})
	}
	before := f.mustGetSecret(user, s.ID)
	for _, v := range []int{1, 4, 5, 99, 0, -1} { // pruned, current, future, never, zero, negative
		_, err := f.svc.RollbackSecret(f.ctx, user, s.ID, v)
		wantErr(t, err, vault.EINVALID, "version")
	}
	sameSecret(t, f.mustGetSecret(user, s.ID), before)
	f.wantVersions(user, s.ID, 4, 3, 2)
	f.wantEnv(user, p.ID, map[string]string{"API_KEY": value("v4")})

	_, err := f.svc.RollbackSecret(f.ctx, user, vault.NewID(vault.PrefixSecret), 1)
	wantErr(t, err, vault.ENOTFOUND, "")
	_, err = f.svc.SecretVersions(f.ctx, user, vault.NewID(vault.PrefixSecret))
	wantErr(t, err, vault.ENOTFOUND, "")
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
		sec, err := tx.Secret(f.ctx, bobs.ID)
		if err != nil {
			return err
		}
		// Bob's sealed row, filed as a version of Alice's secret.
		err = tx.KeepVersion(f.ctx, &vault.KeptVersion{
			SecretID: s.ID, UserID: bob, Version: 7, Name: sec.Name, SealedValue: sec.SealedValue,
			SealedKey: sec.SealedKey, MasterKeyID: sec.MasterKeyID, ReplacedAt: sec.UpdatedAt,
		})
		wantErr(t, err, vault.ENOTFOUND, "")
		// Alice's user id in Bob's transaction is refused too.
		err = tx.KeepVersion(f.ctx, &vault.KeptVersion{
			SecretID: s.ID, UserID: alice, Version: 7, Name: sec.Name, SealedValue: sec.SealedValue,
			SealedKey: sec.SealedKey, MasterKeyID: sec.MasterKeyID, ReplacedAt: sec.UpdatedAt,
		})
		if err == nil {
			t.Error("KeepVersion stored a version of another user in this user's transaction")
		}
		noCanary(t, err)
		if n, err := tx.PruneVersions(f.ctx, s.ID, 0); err != nil || n != 0 {
			t.Errorf("PruneVersions of another user's secret: %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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

func testHistoryStoreRoundTrip(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	s := f.mustSecret(user, "API_KEY", value("v1"))
	full := &vault.KeptVersion{
		SecretID: s.ID, UserID: user, Version: 41, Name: "SOME_NAME", SealedValue: []byte{0, 1, 2, 0xff},
		SealedKey: []byte{3, 4}, MasterKeyID: "0badf00d", CreatedAt: f.now().UTC().Truncate(time.Microsecond),
		ActorTokenID: "tok_a", ReplacedAt: f.now().UTC().Truncate(time.Microsecond), ReplacedByTokenID: "tok_b",
	}
	bare := &vault.KeptVersion{
		SecretID: s.ID, UserID: user, Version: 40, Name: "API_KEY", SealedValue: []byte{9},
		SealedKey: []byte{8}, MasterKeyID: "0badf00d", ReplacedAt: f.now().UTC().Truncate(time.Microsecond),
	}
	err := f.store.Update(f.ctx, user, func(tx vault.Tx) error {
		for _, k := range []*vault.KeptVersion{full, bare} {
			if err := tx.KeepVersion(f.ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.wantKeepRefusals(user, s.ID, full)
	for _, want := range []*vault.KeptVersion{full, bare} {
		sameKept(t, f.mustKept(user, s.ID, want.Version), want)
	}
	var list []vault.SecretVersion
	err = f.store.View(f.ctx, user, func(tx vault.Tx) (err error) {
		list, err = tx.SecretVersions(f.ctx, s.ID)
		return err
	})
	if err != nil || len(list) != 2 || list[0] != full.Info() || list[1] != bare.Info() {
		t.Errorf("SecretVersions: %+v, %v; want %+v, %+v", list, err, full.Info(), bare.Info())
	}
	err = f.store.Update(f.ctx, user, func(tx vault.Tx) error {
		if n, err := tx.PruneVersions(f.ctx, s.ID, 5); err != nil || n != 0 {
			t.Errorf("prune to 5 of 2: %d, %v", n, err)
		}
		if n, err := tx.PruneVersions(f.ctx, s.ID, 1); err != nil || n != 1 {
			t.Errorf("prune to 1 of 2: %d, %v", n, err)
		}
		if _, err := tx.KeptVersion(f.ctx, s.ID, 41); err != nil {
			t.Errorf("prune to 1 removed the newest: %v", err)
		}
		if n, err := tx.PruneVersions(f.ctx, s.ID, 0); err != nil || n != 1 {
			t.Errorf("prune to 0 of 1: %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.mustCountVersions(s.ID); n != 0 {
		t.Errorf("%d rows left after pruning to 0", n)
	}
}

// wantKeepRefusals checks that keeping full again is a conflict, that a
// version never kept is not found and that a version of a secret that does
// not exist cannot be kept.
func (f *fixture) wantKeepRefusals(user, secretID string, full *vault.KeptVersion) {
	t := f.t
	t.Helper()
	// Each refusal in a transaction of its own: on PostgreSQL an error ends
	// the transaction it happens in.
	for _, fn := range []func(tx vault.Tx) error{
		func(tx vault.Tx) error {
			wantErr(t, tx.KeepVersion(f.ctx, full), vault.ECONFLICT, "")
			return nil
		},
		func(tx vault.Tx) error {
			_, err := tx.KeptVersion(f.ctx, secretID, 39)
			wantErr(t, err, vault.ENOTFOUND, "")
			return nil
		},
		func(tx vault.Tx) error {
			err := tx.KeepVersion(f.ctx, &vault.KeptVersion{SecretID: vault.NewID(vault.PrefixSecret), UserID: user, Version: 1,
				Name: "X", SealedValue: []byte{1}, SealedKey: []byte{1}, MasterKeyID: "0badf00d", ReplacedAt: full.ReplacedAt})
			wantErr(t, err, vault.ENOTFOUND, "")
			return nil
		},
	} {
		// The transaction is rolled back: it may not commit after an error.
		errStop := errors.New("stop")
		if err := f.store.Update(f.ctx, user, func(tx vault.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return errStop
		}); !errors.Is(err, errStop) {
			t.Fatal(err)
		}
	}
}

// sameKept checks that a kept version read back is want, field by field.
func sameKept(t *testing.T, got, want *vault.KeptVersion) {
	t.Helper()
	if got.SecretID != want.SecretID || got.UserID != want.UserID || got.Version != want.Version || got.Name != want.Name ||
		!bytes.Equal(got.SealedValue, want.SealedValue) || !bytes.Equal(got.SealedKey, want.SealedKey) ||
		got.MasterKeyID != want.MasterKeyID || got.ActorTokenID != want.ActorTokenID || got.ReplacedByTokenID != want.ReplacedByTokenID {
		t.Errorf("kept version %d:\n got %+v\nwant %+v", want.Version, got, want)
	}
	if want.CreatedAt.IsZero() {
		if !got.CreatedAt.IsZero() {
			t.Errorf("kept version %d: unknown created_at read back as %s", want.Version, got.CreatedAt)
		}
	} else {
		wantTime(t, "created_at", got.CreatedAt, want.CreatedAt)
	}
	wantTime(t, "replaced_at", got.ReplacedAt, want.ReplacedAt)
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
