package vault_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// unfilteredStore is a store whose SecretsForProfile lost its scope
// filter: it returns the secrets every profile of the user may receive,
// as a store whose SQL let agents secrets of other profiles through would.
type unfilteredStore struct {
	vault.Store
	profileIDs []string
}

func (s *unfilteredStore) SecretsForProfile(ctx context.Context, userID, profileID string) ([]*vault.Secret, error) {
	byID := map[string]*vault.Secret{}
	for _, id := range append([]string{profileID}, s.profileIDs...) {
		list, err := s.Store.SecretsForProfile(ctx, userID, id)
		if err != nil {
			return nil, err
		}
		for _, sec := range list {
			byID[sec.ID] = sec
		}
	}
	return slices.Collect(maps.Values(byID)), nil
}

// The scope rule holds in the Service, not only in the store's SQL: with
// a store that returns every secret of the user, a release, a task's
// secrets and the env preview of a profile still hold only what the scope
// grants it. (TestResolveOverride checks resolve alone; the conformance
// suite checks the SQL, which filters too.)
func TestScopeHeldWithoutTheStoresFilter(t *testing.T) {
	ctx := context.Background()
	store := &unfilteredStore{Store: testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db"))}
	svc := testvault.MustService(t, store, vault.Options{})
	alice, _, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	profile := func(name string) string {
		t.Helper()
		p, err := svc.CreateProfile(ctx, alice.ID, vault.ProfileInput{Name: name, Image: "img"})
		if err != nil {
			t.Fatal(err)
		}
		store.profileIDs = append(store.profileIDs, p.ID)
		return p.ID
	}
	builder, reviewer := profile("builder"), profile("reviewer")
	for _, in := range []vault.SecretInput{
		{Name: "EVERYONE", Value: "everyone-value"},
		{Name: "SHARED", Value: "shared-all-value"},
		{Name: "SHARED", Value: "shared-builder-value", Scope: vault.ScopeAgents, ProfileIDs: []string{builder}},
		{Name: "BUILDER_ONLY", Value: "builder-only-value", Scope: vault.ScopeAgents, ProfileIDs: []string{builder}},
		{Name: "REVIEWER_ONLY", Value: "reviewer-only-value", Scope: vault.ScopeAgents, ProfileIDs: []string{reviewer}},
	} {
		if _, err := svc.CreateSecret(ctx, alice.ID, in); err != nil {
			t.Fatalf("create %s: %v", in.Name, err)
		}
	}
	// The store does hand the reviewer's release the builder's secrets.
	rows, err := store.SecretsForProfile(ctx, alice.ID, reviewer)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("the unfiltered store returned %d secrets, want all 5", len(rows))
	}

	want := map[string]map[string]string{
		reviewer: {"EVERYONE": "everyone-value", "SHARED": "shared-all-value", "REVIEWER_ONLY": "reviewer-only-value"},
		builder:  {"EVERYONE": "everyone-value", "SHARED": "shared-builder-value", "BUILDER_ONLY": "builder-only-value"},
	}
	for pid, env := range want {
		got, err := svc.GetDecryptedForProfile(ctx, alice.ID, pid)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, env) {
			t.Errorf("GetDecryptedForProfile(%s): %d names %v, want %v", pid, len(got), slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(env)))
		}
		released, err := svc.ReleaseForTask(ctx, alice.ID, vault.TaskRelease{TaskID: "tsk_" + pid, ProfileID: pid, Attempt: 1})
		if err != nil {
			t.Fatal(err)
		}
		relEnv := map[string]string{}
		for _, r := range released {
			relEnv[r.Name] = r.Value
		}
		if !maps.Equal(relEnv, env) {
			t.Errorf("ReleaseForTask(%s): names %v, want %v", pid, slices.Sorted(maps.Keys(relEnv)), slices.Sorted(maps.Keys(env)))
		}
		sources, err := svc.ProfileSecrets(ctx, alice.ID, pid)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range sources {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, slices.Sorted(maps.Keys(env))) {
			t.Errorf("ProfileSecrets(%s): %v, want %v", pid, names, slices.Sorted(maps.Keys(env)))
		}
	}
}
