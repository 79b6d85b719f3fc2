package vault_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// ProfileSecretsWithout is the override rule without one secret: an
// override left out uncovers the `all` secret; the `all` secret left out
// leaves an override in place and the name gone for the others.
func TestProfileSecretsWithout(t *testing.T) {
	ctx := context.Background()
	svc := testvault.MustService(t, testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db")), vault.Options{
		Names: vault.NamePolicy{Locked: []string{"PLATFORM_URL"}}})
	u, _, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	mkProfile := func(name string) string {
		t.Helper()
		p, err := svc.CreateProfile(ctx, u.ID, vault.ProfileInput{Name: name, Image: "img"})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	builder, reviewer := mkProfile("builder"), mkProfile("reviewer")
	mk := func(in vault.SecretInput) string {
		t.Helper()
		sec, err := svc.CreateSecret(ctx, u.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		return sec.ID
	}
	all := mk(vault.SecretInput{Name: "TOKEN", Value: "for-all"})
	over := mk(vault.SecretInput{Name: "TOKEN", Value: "for-builder", Scope: vault.ScopeAgents, ProfileIDs: []string{builder}})
	source := func(profileID, without string) string {
		t.Helper()
		list, err := svc.ProfileSecretsWithout(ctx, u.ID, profileID, without)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			if e.Name == "TOKEN" {
				return e.SecretID
			}
		}
		return ""
	}
	for _, c := range []struct{ profile, without, want string }{
		{builder, over, all}, {builder, all, over}, {reviewer, all, ""}, {reviewer, over, all}, {builder, "sec_none", over},
	} {
		if got := source(c.profile, c.without); got != c.want {
			t.Errorf("profile %s without %s: TOKEN from %q, want %q", c.profile, c.without, got, c.want)
		}
	}
	if _, err := svc.ProfileSecretsWithout(ctx, u.ID, "prof_nosuchprofilexxxxxxx", all); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("an unknown profile: %v, want ENOTFOUND", err)
	}
	if got := svc.LockedNames(); len(got) != 1 || got[0] != "PLATFORM_URL" {
		t.Errorf("LockedNames() = %v", got)
	}
}
