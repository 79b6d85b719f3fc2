package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// TestMigrateEnvDelivery: profiles saved before env_delivery existed keep
// what they had (env), the rest of their sandbox intact, while a profile
// saved afterwards gets the operator's default.
func TestMigrateEnvDelivery(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "envvault.db")
	raw := migratedTo00007(t, path)
	for _, q := range []string{
		`INSERT INTO users (id, name, created_at) VALUES ('usr_old', 'old', 1)`,
		`INSERT INTO profiles (id, user_id, name, image, command, setup_commands, env, sandbox, created_at, updated_at)
			VALUES ('prf_plain', 'usr_old', 'plain', 'img:1', '[]', '[]', '{}', '{}', 1, 1),
			       ('prf_mem', 'usr_old', 'mem', 'img:1', '[]', '[]', '{}', '{"memory_mb":512}', 1, 1)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	db := mustOpenPath(t, path) // migrates to the latest
	svc := vault.NewService(db, testvault.MustKeyring(t), vault.Options{})
	for id, mem := range map[string]int64{"prf_plain": 0, "prf_mem": 512} {
		got, err := svc.Profile(ctx, "usr_old", id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Sandbox.EnvDelivery != vault.EnvDeliveryEnv || got.Sandbox.MemoryMB != mem {
			t.Errorf("%s after the migration: %+v, want env delivery env and memory %d", id, got.Sandbox, mem)
		}
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
