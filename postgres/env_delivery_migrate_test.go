package postgres_test

import (
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// TestMigrateEnvDelivery: the owner (held by the profiles' row-level
// security) migrates a database of profiles saved before env_delivery
// existed; they keep what they had (env), the rest of their sandbox intact,
// while a profile saved afterwards gets the operator's default.
func TestMigrateEnvDelivery(t *testing.T) {
	roles := testenv.RequirePostgresRoles(t)
	ctx := t.Context()
	super := migratedTo00007(t, roles)
	for _, q := range []string{
		`INSERT INTO users (id, name, created_at) VALUES ('usr_old', 'old', now())`,
		`INSERT INTO profiles (id, user_id, name, image, command, setup_commands, env, sandbox, created_at, updated_at)
			VALUES ('prf_plain', 'usr_old', 'plain', 'img:1', '[]', '[]', '{}', '{}', now(), now()),
			       ('prf_mem', 'usr_old', 'mem', 'img:1', '[]', '[]', '{}', '{"memory_mb": 512}', now(), now())`,
	} {
		if _, err := super.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	owner, err := postgres.Open(ctx, roles.Owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatalf("migrate to the latest as the owner: %v", err)
	}
	svc := vault.NewService(owner, testvault.MustKeyring(t), vault.Options{})
	for id, want := range map[string]vault.Sandbox{
		"prf_plain": {EnvDelivery: vault.EnvDeliveryEnv},
		"prf_mem":   {MemoryMB: 512, EnvDelivery: vault.EnvDeliveryEnv},
	} {
		got, err := svc.Profile(ctx, "usr_old", id)
		if err != nil {
			t.Fatal(err)
		}
		if !equalSandbox(got.Sandbox, want) {
			t.Errorf("%s after the migration: %+v, want %+v", id, got.Sandbox, want)
		}
	}
	var forced bool
	if err := super.QueryRowContext(ctx, `SELECT relforcerowsecurity FROM pg_class WHERE relname = 'profiles'`).Scan(&forced); err != nil || !forced {
		t.Errorf("profiles' row-level security is forced: %t, %v; want it forced again", forced, err)
	}
	created, err := svc.CreateProfile(ctx, "usr_old", vault.ProfileInput{Name: "new", Image: "img:1"})
	if err != nil {
		t.Fatal(err)
	}
	settings, err := svc.SandboxSettings(created)
	if err != nil || created.Sandbox.EnvDelivery != "" || settings.EnvDelivery != vault.EnvDeliveryStdin {
		t.Errorf("a new profile: %+v, settings %+v, %v; want the default, stdin", created.Sandbox, settings, err)
	}
}

func equalSandbox(a, b vault.Sandbox) bool {
	return a.User == b.User && a.MemoryMB == b.MemoryMB && a.EnvDelivery == b.EnvDelivery && a.Network == b.Network
}
