package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

func testOtherUsersAreInvisible(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	pa := f.mustProfile(alice, "alice's")
	pb := f.mustProfile(bob, "bob's")
	sa := f.mustSecret(alice, "SHARED", value("alice all"))
	sg := f.mustSecret(alice, "GRANTED", value("alice granted"), pa)
	never := vault.NewID(vault.PrefixSecret)
	neverProfile := vault.NewID(vault.PrefixProfile)

	// sameAnswer checks that another user's id gets exactly the answer of
	// an id that never existed.
	sameAnswer := func(t *testing.T, what string, theirs error, theirID string, missing error, missingID string) {
		t.Helper()
		wantErr(t, theirs, vault.ENOTFOUND, "")
		wantErr(t, missing, vault.ENOTFOUND, "")
		a := strings.ReplaceAll(vault.ErrorMessage(theirs), theirID, "<id>")
		b := strings.ReplaceAll(vault.ErrorMessage(missing), missingID, "<id>")
		if a != b {
			t.Errorf("%s: another user's id answers %q, an unknown id %q", what, a, b)
		}
	}

	for _, id := range []string{sa.ID, sg.ID} {
		_, errTheirs := f.svc.Secret(f.ctx, bob, id)
		_, errNever := f.svc.Secret(f.ctx, bob, never)
		sameAnswer(t, "get secret", errTheirs, id, errNever, never)

		_, errTheirs = f.svc.UpdateSecret(f.ctx, bob, id, vault.SecretPatch{Value: ptr(value("bob was here"))})
		_, errNever = f.svc.UpdateSecret(f.ctx, bob, never, vault.SecretPatch{Value: ptr(value("bob was here"))})
		sameAnswer(t, "update secret", errTheirs, id, errNever, never)

		_, errTheirs = f.svc.UpdateSecret(f.ctx, bob, id, vault.SecretPatch{Name: ptr("STOLEN")})
		wantErr(t, errTheirs, vault.ENOTFOUND, "")

		sameAnswer(t, "delete secret", f.svc.DeleteSecret(f.ctx, bob, id), id, f.svc.DeleteSecret(f.ctx, bob, never), never)
	}

	_, errTheirs := f.svc.Profile(f.ctx, bob, pa.ID)
	_, errNever := f.svc.Profile(f.ctx, bob, neverProfile)
	sameAnswer(t, "get profile", errTheirs, pa.ID, errNever, neverProfile)
	_, errTheirs = f.svc.UpdateProfile(f.ctx, bob, pa.ID, vault.ProfilePatch{Name: ptr("mine now")})
	_, errNever = f.svc.UpdateProfile(f.ctx, bob, neverProfile, vault.ProfilePatch{Name: ptr("mine now")})
	sameAnswer(t, "update profile", errTheirs, pa.ID, errNever, neverProfile)
	sameAnswer(t, "delete profile", f.svc.DeleteProfile(f.ctx, bob, pa.ID), pa.ID, f.svc.DeleteProfile(f.ctx, bob, neverProfile), neverProfile)

	env, errTheirs := f.svc.GetDecryptedForProfile(f.ctx, bob, pa.ID)
	if env != nil {
		t.Errorf("another user's profile gave an env of %d names", len(env))
	}
	_, errNever = f.svc.GetDecryptedForProfile(f.ctx, bob, neverProfile)
	sameAnswer(t, "env of profile", errTheirs, pa.ID, errNever, neverProfile)
	_, errTheirs = f.svc.ProfileSecrets(f.ctx, bob, pa.ID)
	_, errNever = f.svc.ProfileSecrets(f.ctx, bob, neverProfile)
	sameAnswer(t, "profile secrets", errTheirs, pa.ID, errNever, neverProfile)

	// Bob's lists and env hold nothing of Alice's.
	if list := f.mustAllSecrets(bob); len(list) != 0 {
		t.Errorf("bob lists %d secrets, want 0", len(list))
	}
	page, err := f.svc.Profiles(f.ctx, bob, vault.ListOptions{})
	if err != nil || !slices.Equal(profileIDs(page.Items), []string{pb.ID}) {
		t.Errorf("bob's profiles: %v, %v; want [%s]", profileIDs(page.Items), err, pb.ID)
	}
	f.wantEnv(bob, pb.ID, map[string]string{})
	// ... and Bob may use Alice's names for his own.
	f.mustSecret(bob, "SHARED", value("bob all"))
	f.wantEnv(bob, pb.ID, map[string]string{"SHARED": value("bob all")})

	// Alice's objects are as they were.
	sameSecret(t, f.mustGetSecret(alice, sa.ID), sa)
	sameSecret(t, f.mustGetSecret(alice, sg.ID), sg)
	sameProfile(t, f.mustGetProfile(alice, pa.ID), pa)
	f.wantEnv(alice, pa.ID, map[string]string{"SHARED": value("alice all"), "GRANTED": value("alice granted")})
}

func testTxIsScopedToItsUser(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	pa := f.mustProfile(alice, "alice's")
	pb := f.mustProfile(bob, "bob's")
	sa := f.mustSecret(alice, "GRANTED", value("a"), pa)
	sall := f.mustSecret(alice, "ALL", value("all"))

	err := f.store.Update(f.ctx, bob, func(tx vault.Tx) error {
		_, err := tx.Secret(f.ctx, sa.ID)
		wantErr(t, err, vault.ENOTFOUND, "")
		wantErr(t, tx.DeleteSecret(f.ctx, sa.ID), vault.ENOTFOUND, "")
		hijack := *sall
		hijack.UserID = bob
		hijack.Description = "bob was here"
		wantErr(t, tx.UpdateSecret(f.ctx, &hijack, true), vault.ENOTFOUND, "")

		_, err = tx.Profile(f.ctx, pa.ID)
		wantErr(t, err, vault.ENOTFOUND, "")
		hp := *pa
		hp.UserID = bob
		hp.Name = "bob's now"
		wantErr(t, tx.UpdateProfile(f.ctx, &hp), vault.ENOTFOUND, "")
		wantErr(t, tx.DeleteProfile(f.ctx, pa.ID), vault.ENOTFOUND, "")

		found, err := tx.ExistingProfileIDs(f.ctx, []string{pa.ID, pb.ID, vault.NewID(vault.PrefixProfile)})
		if err != nil || !slices.Equal(found, []string{pb.ID}) {
			t.Errorf("ExistingProfileIDs: %v, %v; want [%s]", found, err, pb.ID)
		}
		named, err := tx.SecretsNamed(f.ctx, "GRANTED")
		if err != nil || len(named) != 0 {
			t.Errorf("SecretsNamed of alice's name: %d secrets, %v", len(named), err)
		}
		n, err := tx.CountSecrets(f.ctx)
		if err != nil || n != 0 {
			t.Errorf("CountSecrets: %d, %v; want 0", n, err)
		}
		list, err := tx.Secrets(f.ctx, vault.ListFilter{Limit: 100})
		if err != nil || len(list) != 0 {
			t.Errorf("Secrets: %d, %v; want none", len(list), err)
		}
		profiles, err := tx.Profiles(f.ctx, vault.ListFilter{Limit: 100})
		if err != nil || !slices.Equal(profileIDs(profiles), []string{pb.ID}) {
			t.Errorf("Profiles: %v, %v; want [%s]", profileIDs(profiles), err, pb.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("update as bob: %v", err)
	}

	_, err = f.store.SecretsForProfile(f.ctx, bob, pa.ID)
	wantErr(t, err, vault.ENOTFOUND, "")

	f.wantStrayGrantRefused(alice, bob, pa, sa, sall)

}

// wantStrayGrantRefused checks that a grant of bob's secret to alice's
// profile pa is refused by the store itself, not only by the service's
// check, and that alice's secrets sa and sall are as they were.
func (f *fixture) wantStrayGrantRefused(alice, bob string, pa *vault.Profile, sa, sall *vault.Secret) {
	t := f.t
	t.Helper()
	now := f.now().UTC().Truncate(time.Microsecond)
	stray := &vault.Secret{
		ID: vault.NewID(vault.PrefixSecret), UserID: bob, Name: "STRAY", Scope: vault.ScopeAgents,
		ProfileIDs: []string{pa.ID}, Version: 1, SealedValue: []byte{1, 2, 3}, SealedKey: []byte{4, 5, 6},
		MasterKeyID: f.keys.CurrentID(), CreatedAt: now, UpdatedAt: now,
	}
	var createErr error
	_ = f.store.Update(f.ctx, bob, func(tx vault.Tx) error {
		createErr = tx.CreateSecret(f.ctx, stray)
		return createErr
	})
	if createErr == nil {
		t.Errorf("Tx.CreateSecret granted bob's secret to alice's profile")
	}
	if n := f.mustCount(bob); n != 0 {
		t.Errorf("bob holds %d secrets after a refused grant, want 0", n)
	}
	got, err := f.store.SecretsForProfile(f.ctx, alice, pa.ID)
	if err != nil {
		t.Fatalf("secrets for alice's profile: %v", err)
	}
	if gotIDs := secretIDs(got); slices.Contains(gotIDs, stray.ID) || len(gotIDs) != 2 {
		t.Errorf("alice's profile receives %v, want exactly %s and %s", gotIDs, sa.ID, sall.ID)
	}

	sameSecret(t, f.mustGetSecret(alice, sa.ID), sa)
	sameSecret(t, f.mustGetSecret(alice, sall.ID), sall)
	sameProfile(t, f.mustGetProfile(alice, pa.ID), pa)
}
