package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/envvault/envvault/vault"
)

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
			return tx.UpdateSecret(f.ctx, cur, true)
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
