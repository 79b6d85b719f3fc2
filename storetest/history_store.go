package storetest

import (
	"bytes"
	"errors"
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
