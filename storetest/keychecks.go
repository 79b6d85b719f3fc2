package storetest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

func testKeyChecks(t *testing.T, f *fixture) {
	checks, err := f.store.KeyChecks(f.ctx)
	if err != nil || len(checks) != 0 {
		t.Fatalf("fresh store: %d key checks, %v; want none", len(checks), err)
	}
	counts, err := f.store.MasterKeyCounts(f.ctx)
	if err != nil || len(counts) != 0 {
		t.Fatalf("fresh store: master key counts %v, %v; want none", counts, err)
	}

	if err := f.svc.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys on a fresh store: %v", err)
	}
	checks, err = f.store.KeyChecks(f.ctx)
	if err != nil || len(checks) != 1 || checks[0].KeyID != f.keys.CurrentID() || len(checks[0].Sealed) == 0 {
		t.Fatalf("after the first check: %+v, %v; want one for key %s", checks, err, f.keys.CurrentID())
	}
	first := checks[0]
	if err := f.svc.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys again: %v", err)
	}
	checks, err = f.store.KeyChecks(f.ctx)
	if err != nil || len(checks) != 1 || !bytes.Equal(checks[0].Sealed, first.Sealed) {
		t.Fatalf("a second check changed the stored checks: %+v, %v", checks, err)
	}

	user := f.mustUser("alice")
	for _, name := range []string{"ONE", "TWO", "THREE"} {
		f.mustSecret(user, name, value(name))
	}
	oldID := f.keys.CurrentID()
	counts, err = f.store.MasterKeyCounts(f.ctx)
	if err != nil || len(counts) != 1 || counts[oldID] != 3 {
		t.Fatalf("master key counts %v, %v; want %s: 3", counts, err, oldID)
	}

	newKey := mustKey(t)
	wrong := mustKeyring(t, newKey)
	err = vault.NewService(f.store, wrong, vault.Options{}).CheckKeys(f.ctx)
	if err == nil {
		t.Fatalf("a keyring with another key passed the check")
	}
	if msg := err.Error(); !strings.Contains(msg, wrong.CurrentID()) || !strings.Contains(msg, oldID) {
		t.Errorf("wrong key error %q does not name both key ids %s and %s", msg, wrong.CurrentID(), oldID)
	}
	if checks, _ := f.store.KeyChecks(f.ctx); len(checks) != 1 {
		t.Errorf("a failed check stored a key check: %d checks", len(checks))
	}

	// Rotation: the new key seals, the old one still opens.
	rotatedKeys := mustKeyring(t, newKey, f.key)
	rotated := vault.NewService(f.store, rotatedKeys, vault.Options{Now: f.now})
	if err := rotated.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys after rotation: %v", err)
	}
	checks, err = f.store.KeyChecks(f.ctx)
	if err != nil || !slices.Equal(ids(checks, func(c vault.KeyCheck) string { return c.KeyID }), slices.Sorted(slices.Values([]string{oldID, rotatedKeys.CurrentID()}))) {
		t.Errorf("after rotation: key checks %+v, %v", ids(checks, func(c vault.KeyCheck) string { return c.KeyID }), err)
	}
	if _, err := rotated.CreateSecret(f.ctx, user, vault.SecretInput{Name: "FOUR", Value: value("4")}); err != nil {
		t.Fatalf("create under the new key: %v", err)
	}
	counts, err = f.store.MasterKeyCounts(f.ctx)
	if err != nil || len(counts) != 2 || counts[oldID] != 3 || counts[rotatedKeys.CurrentID()] != 1 {
		t.Errorf("master key counts after rotation %v, %v", counts, err)
	}
	p := f.mustProfile(user, "p")
	env, err := rotated.GetDecryptedForProfile(f.ctx, user, p.ID)
	if err != nil || len(env) != 4 || env["ONE"] != value("ONE") || env["FOUR"] != value("4") {
		t.Errorf("env under the rotated keyring: %s, %v", envString(env), err)
	}
	// The old keyring alone no longer opens everything, and says which key
	// it lacks.
	err = f.svc.CheckKeys(f.ctx)
	if err == nil || !strings.Contains(err.Error(), rotatedKeys.CurrentID()) {
		t.Errorf("old keyring after rotation: %v; want an error naming %s", err, rotatedKeys.CurrentID())
	}

	f.wantPutKeyCheckReplaces()

}

// wantPutKeyCheckReplaces checks that PutKeyCheck replaces the check of
// the same key id; the store holds two other checks.
func (f *fixture) wantPutKeyCheckReplaces() {
	t := f.t
	t.Helper()
	for _, sealed := range [][]byte{{1, 2, 3}, {4, 5}} {
		if err := f.store.PutKeyCheck(f.ctx, vault.KeyCheck{KeyID: "0badc0de", Sealed: sealed}); err != nil {
			t.Fatalf("put key check: %v", err)
		}
	}
	checks, err := f.store.KeyChecks(f.ctx)
	if err != nil {
		t.Fatalf("key checks: %v", err)
	}
	n := 0
	for _, c := range checks {
		if c.KeyID == "0badc0de" {
			n++
			if !bytes.Equal(c.Sealed, []byte{4, 5}) {
				t.Errorf("replaced key check holds %v, want [4 5]", c.Sealed)
			}
		}
	}
	if n != 1 || len(checks) != 3 {
		t.Errorf("after two puts of one key id: %d checks of it, %d in all; want 1, 3", n, len(checks))
	}
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatalf("parse generated key: %v", err)
	}
	return k
}

func mustKeyring(t *testing.T, current []byte, previous ...[]byte) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(current, previous...)
	if err != nil {
		t.Fatalf("new keyring: %v", err)
	}
	return k
}
