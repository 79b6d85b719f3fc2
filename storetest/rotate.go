package storetest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// rotationTests are the master-key rotation suite: the store methods key
// rotation uses, and Service.RotateKeys on top of them, under concurrent
// reads and writes, stopped part-way, and with keys that do not open.
var rotationTests = []test{
	{name: "SealedKeysOfAllUsers", fn: testSealedKeysOfAllUsers},
	{name: "SwapIsCompareAndSwap", fn: testSwapIsCompareAndSwap},
	{name: "KeptVersionKeys", fn: testKeptVersionKeys},
	{name: "RotateEmptyStore", fn: testRotateEmptyStore},
	{name: "RotateUnderConcurrentReadsAndWrites", fn: testRotateUnderLoad},
	{name: "RotateStoppedAndResumed", fn: testRotateStoppedAndResumed},
	{name: "UnknownMasterKey", fn: testUnknownMasterKey},
	{name: "RotateKeyThatDoesNotOpen", fn: testRotateKeyThatDoesNotOpen},
}

// rotated returns a service on f's store whose keyring has a new current
// key and f's key as the previous one, that keyring and the new key. The
// store has been checked with f's key first, as the service that ran
// before the rotation did at its start-up.
func (f *fixture) rotated() (*vault.Service, *seal.Keyring, []byte) {
	f.t.Helper()
	if err := f.svc.CheckKeys(f.ctx); err != nil {
		f.t.Fatalf("check keys with the old key: %v", err)
	}
	key := mustKey(f.t)
	keys := mustKeyring(f.t, key, f.key)
	return vault.NewService(f.store, keys, vault.Options{Now: f.now}), keys, key
}

func (f *fixture) mustCounts() map[string]int {
	f.t.Helper()
	counts, err := f.store.MasterKeyCounts(f.ctx)
	if err != nil {
		f.t.Fatalf("master key counts: %v", err)
	}
	return counts
}

func (f *fixture) wantCounts(want map[string]int) {
	f.t.Helper()
	if got := f.mustCounts(); !maps.Equal(got, want) {
		f.t.Errorf("master key counts %v, want %v", got, want)
	}
}

func (f *fixture) wantKeyChecks(ids ...string) {
	f.t.Helper()
	checks, err := f.store.KeyChecks(f.ctx)
	if err != nil {
		f.t.Fatalf("key checks: %v", err)
	}
	got := sortedIDs(checks, func(c vault.KeyCheck) string { return c.KeyID })
	if !slices.Equal(got, slices.Sorted(slices.Values(ids))) {
		f.t.Errorf("key checks of %v, want %v", got, ids)
	}
}

// sortedIDs is ids, sorted.
func sortedIDs[T any](items []T, id func(T) string) []string {
	out := ids(items, id)
	slices.Sort(out)
	return out
}

func mustRotate(t *testing.T, svc *vault.Service, ctx context.Context, opts vault.RotateOptions) vault.RotateResult {
	t.Helper()
	res, err := svc.RotateKeys(ctx, opts)
	if err != nil {
		noCanary(t, err)
		t.Fatalf("rotate keys: %v (result %+v)", err, res)
	}
	return res
}

func testSealedKeysOfAllUsers(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	var want []*vault.Secret
	for i := range 5 {
		want = append(want, f.mustSecret(alice, fmt.Sprintf("A%d", i), value("a")), f.mustSecret(bob, fmt.Sprintf("B%d", i), value("b")))
	}
	slices.SortFunc(want, func(a, b *vault.Secret) int { return strings.Compare(a.ID, b.ID) })
	other := seal.KeyID(mustKey(t))

	// Everything is under f's key, so "not under another key" is all.
	var got []vault.SealedKey
	after := ""
	for {
		page, err := f.store.SealedKeysOfAllUsers(f.ctx, other, after, 3)
		if err != nil {
			t.Fatalf("sealed keys after %q: %v", after, err)
		}
		if len(page) > 3 {
			t.Fatalf("a page of %d for a limit of 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].SecretID
	}
	if len(got) != len(want) {
		t.Fatalf("walked %d data keys of all users, want %d", len(got), len(want))
	}
	for i, k := range got {
		w := want[i]
		if k.SecretID != w.ID || k.UserID != w.UserID || !bytes.Equal(k.Sealed, w.SealedKey) || k.MasterKeyID != f.keys.CurrentID() {
			t.Errorf("data key %d: %s of %s under %s, want %s of %s under %s (or other sealed bytes)",
				i, k.SecretID, k.UserID, k.MasterKeyID, w.ID, w.UserID, f.keys.CurrentID())
		}
	}
	// Under the current key, nothing is left to rotate.
	if keys, err := f.store.SealedKeysOfAllUsers(f.ctx, f.keys.CurrentID(), "", 100); err != nil || len(keys) != 0 {
		t.Errorf("data keys not under the key of all of them: %d, %v; want none", len(keys), err)
	}
}

func testSwapIsCompareAndSwap(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p1, p2 := f.mustProfile(user, "p1"), f.mustProfile(user, "p2")
	changed := f.mustSecret(user, "CHANGED", value("old"), p1)
	kept := f.mustSecret(user, "KEPT", value("kept"), p2)
	deleted := f.mustSecret(user, "DELETED", value("deleted"), p2)
	newID := seal.KeyID(mustKey(t))

	keys, err := f.store.SealedKeysOfAllUsers(f.ctx, newID, "", 10)
	if err != nil || len(keys) != 3 {
		t.Fatalf("sealed keys: %d, %v; want 3", len(keys), err)
	}
	// Between the read and the swap, one secret gets a new value (and a
	// new data key) and one is deleted.
	f.mustUpdateSecret(user, changed.ID, vault.SecretPatch{Value: ptr(value("new"))})
	if err := f.svc.DeleteSecret(f.ctx, user, deleted.ID); err != nil {
		t.Fatal(err)
	}
	swaps := make([]vault.KeySwap, len(keys))
	for i, k := range keys {
		// Not a real re-wrap: the swapped rows no longer open, which only
		// KEPT's profile p2 shows.
		swaps[i] = vault.KeySwap{SecretID: k.SecretID, Old: k.Sealed, New: []byte("swapped " + k.SecretID)}
	}
	n, err := f.store.SwapSealedKeysOfAllUsers(f.ctx, newID, swaps)
	if err != nil || n != 1 {
		t.Fatalf("swap: %d, %v; want 1 (only KEPT is as it was read)", n, err)
	}
	f.wantEnv(user, p1.ID, map[string]string{"CHANGED": value("new")})
	// CHANGED and the version it keeps of its old value; KEPT.
	f.wantCounts(map[string]int{f.keys.CurrentID(): 2, newID: 1})
	got := f.mustGetSecret(user, kept.ID)
	if string(got.SealedKey) != "swapped "+kept.ID || got.MasterKeyID != newID {
		t.Errorf("KEPT after the swap: key id %s, sealed key changed %v", got.MasterKeyID, !bytes.Equal(got.SealedKey, kept.SealedKey))
	}
	// Nothing but the key moved.
	if !bytes.Equal(got.SealedValue, kept.SealedValue) || got.Version != kept.Version || !got.UpdatedAt.Equal(kept.UpdatedAt) || got.Name != kept.Name {
		t.Errorf("the swap changed more than KEPT's data key")
	}
	if n, err := f.store.SwapSealedKeysOfAllUsers(f.ctx, newID, swaps); err != nil || n != 0 {
		t.Errorf("the same swaps again: %d, %v; want 0", n, err)
	}
	if n, err := f.store.SwapSealedKeysOfAllUsers(f.ctx, newID, nil); err != nil || n != 0 {
		t.Errorf("no swaps: %d, %v; want 0", n, err)
	}
}

func testRotateEmptyStore(t *testing.T, f *fixture) {
	svc, keys, _ := f.rotated()
	res := mustRotate(t, svc, f.ctx, vault.RotateOptions{})
	if res.Total != 0 || res.Rotated != 0 || res.AlreadyCurrent != 0 || len(res.Remaining) != 0 || res.CurrentKeyID != keys.CurrentID() {
		t.Errorf("rotation of an empty store: %+v", res)
	}
	f.wantKeyChecks(keys.CurrentID())
}

// testUnknownMasterKey is start-up with data keys sealed under a master key
// that is not configured: it fails naming that key and how many data keys
// need it, whether or not the stored key checks open.
func testUnknownMasterKey(t *testing.T, f *fixture) {
	const n = 3
	oldID := f.keys.CurrentID()
	if err := f.svc.CheckKeys(f.ctx); err != nil {
		t.Fatal(err)
	}
	user := f.mustUser("alice")
	for i := range n {
		f.mustSecret(user, rotName(i, 0), rotValue(i, 1))
	}
	newKey := mustKey(t)
	newID := seal.KeyID(newKey)
	newOnly := vault.NewService(f.store, mustKeyring(t, newKey), vault.Options{})
	want := fmt.Sprintf("%d under master key %s", n, oldID)

	// Only the old key ever checked: the key check does not open either.
	err := newOnly.CheckKeys(f.ctx)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), newID) {
		t.Errorf("start-up with an unknown key: %v; want it to say %q and name %s", err, want, newID)
	}
	// The new key was configured once, beside the old one, and then the
	// old one dropped before any rotation.
	if err := vault.NewService(f.store, mustKeyring(t, newKey, f.key), vault.Options{}).CheckKeys(f.ctx); err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("%d data keys are sealed under master key %s, which is not configured", n, oldID)
	err = newOnly.CheckKeys(f.ctx)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "ENCRYPTION_KEY_PREVIOUS") {
		t.Errorf("start-up without the old key: %v; want %q and the way out", err, want)
	}
	// Rotation refuses too, and changes nothing; the status still counts.
	if res, err := newOnly.RotateKeys(f.ctx, vault.RotateOptions{}); err == nil || !strings.Contains(err.Error(), want) || res.Rotated != 0 {
		t.Errorf("rotation without the old key: %+v, %v; want %q", res, err, want)
	}
	f.wantCounts(map[string]int{oldID: n})
	counts, current, err := newOnly.KeyStatus(f.ctx)
	if err != nil || current != newID || !maps.Equal(counts, map[string]int{oldID: n}) {
		t.Errorf("key status without the old key: %v, %s, %v", counts, current, err)
	}
}

func testRotateKeyThatDoesNotOpen(t *testing.T, f *fixture) {
	oldID := f.keys.CurrentID()
	user := f.mustUser("alice")
	a := f.mustSecret(user, "ALPHA", value("alpha"))
	b := f.mustSecret(user, "BETA", value("beta"))
	f.mustSecret(user, "GAMMA", value("gamma"))
	// BETA's row holds ALPHA's data key, which is bound to ALPHA.
	err := f.store.Update(f.ctx, user, func(tx vault.Tx) error {
		dst, err := tx.Secret(f.ctx, b.ID)
		if err != nil {
			return err
		}
		dst.SealedKey = a.SealedKey
		return tx.UpdateSecret(f.ctx, dst, false)
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, keys, _ := f.rotated()
	res, err := svc.RotateKeys(f.ctx, vault.RotateOptions{BatchSize: 2})
	if err == nil || !strings.Contains(err.Error(), b.ID) {
		t.Fatalf("rotation with a data key that does not open: %v; want an error naming %s", err, b.ID)
	}
	noCanary(t, err)
	if res.Rotated != 2 || !maps.Equal(res.Remaining, map[string]int{oldID: 1}) {
		t.Errorf("rotation with a data key that does not open: %+v; want the 2 others rotated, 1 left", res)
	}
	f.wantCounts(map[string]int{oldID: 1, keys.CurrentID(): 2})
	// The old key still holds a data key: its check stays.
	f.wantKeyChecks(oldID, keys.CurrentID())
}

// testKeptVersionKeys is SealedVersionKeysOfAllUsers and
// SwapSealedVersionKeysOfAllUsers on the kept versions of two users'
// secrets, and MasterKeyCounts counting them.
func testKeptVersionKeys(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	type kept struct {
		secretID, userID string
		version          int
		sealed           []byte
	}
	var want []kept
	for _, user := range []string{alice, bob} {
		for i := range 3 {
			s := f.mustSecret(user, rotName(i, 0), rotValue(i, 1))
			// Versions 1 and 2 are kept, as each was sealed.
			for v := 2; v <= 3; v++ {
				want = append(want, kept{s.ID, user, s.Version, s.SealedKey})
				s = f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(rotValue(i, v))})
			}
		}
	}
	slices.SortFunc(want, func(a, b kept) int {
		if c := strings.Compare(a.secretID, b.secretID); c != 0 {
			return c
		}
		return a.version - b.version
	})
	oldID := f.keys.CurrentID()
	newID := seal.KeyID(mustKey(t))
	f.wantCounts(map[string]int{oldID: 6 + len(want)})

	var got []vault.SealedKey
	afterID, afterVersion := "", 0
	for {
		page, err := f.store.SealedVersionKeysOfAllUsers(f.ctx, newID, afterID, afterVersion, 4)
		if err != nil {
			t.Fatalf("kept version keys after %s/%d: %v", afterID, afterVersion, err)
		}
		if len(page) > 4 {
			t.Fatalf("a page of %d for a limit of 4", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		afterID, afterVersion = page[len(page)-1].SecretID, page[len(page)-1].Version
	}
	if len(got) != len(want) {
		t.Fatalf("walked %d kept version keys, want %d", len(got), len(want))
	}
	for i, k := range got {
		w := want[i]
		if k.SecretID != w.secretID || k.Version != w.version || k.UserID != w.userID || !bytes.Equal(k.Sealed, w.sealed) || k.MasterKeyID != oldID {
			t.Errorf("kept version key %d: %s/%d of %s under %s, want %s/%d of %s under %s (or other sealed bytes)",
				i, k.SecretID, k.Version, k.UserID, k.MasterKeyID, w.secretID, w.version, w.userID, oldID)
		}
	}

	// Swap the first: once with a stale Old (nothing), then for real, then
	// again (nothing).
	first := got[0]
	stale := []vault.KeySwap{{SecretID: first.SecretID, Version: first.Version, Old: []byte("stale"), New: []byte("new")}}
	if n, err := f.store.SwapSealedVersionKeysOfAllUsers(f.ctx, newID, stale); err != nil || n != 0 {
		t.Errorf("swap with a stale old key: %d, %v; want 0", n, err)
	}
	swap := []vault.KeySwap{{SecretID: first.SecretID, Version: first.Version, Old: first.Sealed, New: []byte("new")}}
	if n, err := f.store.SwapSealedVersionKeysOfAllUsers(f.ctx, newID, swap); err != nil || n != 1 {
		t.Errorf("swap: %d, %v; want 1", n, err)
	}
	if n, err := f.store.SwapSealedVersionKeysOfAllUsers(f.ctx, newID, swap); err != nil || n != 0 {
		t.Errorf("the same swap again: %d, %v; want 0", n, err)
	}
	f.wantCounts(map[string]int{oldID: 6 + len(want) - 1, newID: 1})
	// Only that version moved: not its secret, not its other version.
	rest, err := f.store.SealedVersionKeysOfAllUsers(f.ctx, newID, "", 0, 100)
	if err != nil || len(rest) != len(want)-1 || rest[0].SecretID != first.SecretID || rest[0].Version == first.Version {
		t.Errorf("after one swap: %d kept version keys not under the new key, %v", len(rest), err)
	}
	if keys, err := f.store.SealedKeysOfAllUsers(f.ctx, newID, "", 100); err != nil || len(keys) != 6 {
		t.Errorf("after a kept version's swap: %d secrets' keys not under the new key, %v; want 6", len(keys), err)
	}
}
