package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

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
	// SecretAndVersions reads the same, with the secret; ENOTFOUND for a
	// secret that is not there, and a secret that keeps nothing has none.
	other := f.mustSecret(user, "OTHER", "o")
	err = f.store.View(f.ctx, user, func(tx vault.Tx) error {
		sec, both, err := tx.SecretAndVersions(f.ctx, s.ID)
		if err != nil || sec.ID != s.ID || sec.Version != s.Version || !slices.Equal(both, list) {
			t.Errorf("SecretAndVersions: %+v, %+v, %v; want %s and %+v", sec, both, err, s.ID, list)
		}
		if sec, none, err := tx.SecretAndVersions(f.ctx, other.ID); err != nil || sec.ID != other.ID || len(none) != 0 {
			t.Errorf("SecretAndVersions of a secret that keeps nothing: %+v, %+v, %v", sec, none, err)
		}
		_, _, err = tx.SecretAndVersions(f.ctx, vault.NewID(vault.PrefixSecret))
		wantErr(t, err, vault.ENOTFOUND, "")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		del  []int
		left int
	}{{[]int{39, 42}, 2}, {[]int{bare.Version}, 1}, {[]int{full.Version}, 0}} {
		if err := f.store.Update(f.ctx, user, func(tx vault.Tx) error {
			return tx.DeleteVersions(f.ctx, s.ID, tc.del)
		}); err != nil {
			t.Fatal(err)
		}
		if n := f.mustCountVersions(s.ID); n != tc.left {
			t.Errorf("after deleting versions %v: %d left, want %d", tc.del, n, tc.left)
		}
	}
}

// wantKeepRefusals checks that keeping full again is a conflict, that a
// version never kept is not found and that a version of a secret that does
// not exist cannot be kept.
func (f *fixture) wantKeepRefusals(user, secretID string, full *vault.KeptVersion) {
	t := f.t
	t.Helper()
	// Each refusal in a transaction of its own: on PostgreSQL an error ends
	// the transaction it happens in. A write's error may come from its call
	// or from the commit (vault.Tx), so each is Update's error.
	for _, tc := range []struct {
		code string
		fn   func(tx vault.Tx) error
	}{
		{vault.ECONFLICT, func(tx vault.Tx) error { return tx.KeepVersion(f.ctx, full) }},
		{vault.ENOTFOUND, func(tx vault.Tx) error {
			_, err := tx.KeptVersion(f.ctx, secretID, 39)
			return err
		}},
		{vault.ENOTFOUND, func(tx vault.Tx) error {
			return tx.KeepVersion(f.ctx, &vault.KeptVersion{SecretID: vault.NewID(vault.PrefixSecret), UserID: user, Version: 1,
				Name: "X", SealedValue: []byte{1}, SealedKey: []byte{1}, MasterKeyID: "0badf00d", ReplacedAt: full.ReplacedAt})
		}},
	} {
		wantErr(t, f.store.Update(f.ctx, user, tc.fn), tc.code, "")
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
