package vault_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// TestValuesAtVersions: the values a container was given are found by
// secret id and version, current or kept; a secret deleted since, a
// version pruned since and another user's secret give nothing.
func TestValuesAtVersions(t *testing.T) {
	ctx := context.Background()
	db := testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db"))
	svc := testvault.MustService(t, db, vault.Options{KeepVersions: 1})
	alice, _, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := svc.CreateUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	secret := func(user, name, value string) *vault.Secret {
		t.Helper()
		s, err := svc.CreateSecret(ctx, user, vault.SecretInput{Name: name, Value: value})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	update := func(s *vault.Secret, value string) {
		t.Helper()
		if _, err := svc.UpdateSecret(ctx, alice.ID, s.ID, vault.SecretPatch{Value: &value}); err != nil {
			t.Fatal(err)
		}
	}
	rotated, steady, gone := secret(alice.ID, "ROTATED", "rotated-v1"), secret(alice.ID, "STEADY", "steady-v1"), secret(alice.ID, "GONE", "gone-v1")
	update(rotated, "rotated-v2") // keeps v1
	update(rotated, "rotated-v3") // keeps v2, prunes v1 (KeepVersions 1)
	if err := svc.DeleteSecret(ctx, alice.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	others := secret(bob.ID, "BOBS", "bobs-v1")
	refs := []vault.EnvSecret{
		{SecretID: rotated.ID, Version: 2}, {SecretID: rotated.ID, Version: 3}, {SecretID: rotated.ID, Version: 1},
		{SecretID: steady.ID, Version: 1}, {SecretID: gone.ID, Version: 1}, {SecretID: others.ID, Version: 1},
	}
	got, err := svc.ValuesAtVersions(ctx, alice.ID, refs)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"rotated-v2", "rotated-v3", "steady-v1"}; !slices.Equal(got, want) {
		t.Errorf("ValuesAtVersions = %q, want %q", got, want)
	}
}
