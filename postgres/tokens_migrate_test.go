package postgres_test

import (
	"crypto/sha256"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// migratedTo00007 applies, as the owner, the migrations up to 00007 (the
// schema before env delivery and tokens as a resource) to the database of
// roles, for tests of later migrations, and returns a superuser handle on
// it.
func migratedTo00007(t *testing.T, roles testenv.PostgresRoles) *sql.DB {
	t.Helper()
	old := fstest.MapFS{}
	for _, name := range []string{"00001_init.sql", "00002_tasks.sql", "00003_secret_versions.sql", "00004_audit.sql",
		"00005_rls.sql", "00006_audit_link.sql", "00007_sandbox.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "migrations", "postgres", name))
		if err != nil {
			t.Fatal(err)
		}
		old[name] = &fstest.MapFile{Data: b}
	}
	ownerPool, err := stdlibPool(t, roles.Owner)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, ownerPool, old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(t.Context()); err != nil {
		t.Fatalf("migrate to 00007: %v", err)
	}
	super, err := stdlibPool(t, roles.Super)
	if err != nil {
		t.Fatal(err)
	}
	return super
}

// TestMigrateTokens: the owner migrates a database of tokens made before
// tokens had names and scopes; they become full tokens named "initial",
// never used, never expiring, and the service role authenticates them.
func TestMigrateTokens(t *testing.T) {
	roles := testenv.RequirePostgresRoles(t)
	ctx := t.Context()
	super := migratedTo00007(t, roles)
	const id = "tok_OLDOLDOLDOLDOLDOLDOLD"
	sum := sha256.Sum256([]byte("old-secret"))
	if _, err := super.ExecContext(ctx, `INSERT INTO users (id, name, created_at) VALUES ('usr_old', 'old', now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := super.ExecContext(ctx, `INSERT INTO tokens (id, user_id, hash, created_at) VALUES ($1, 'usr_old', $2, now())`, id, sum[:]); err != nil {
		t.Fatal(err)
	}
	owner, err := postgres.Open(ctx, roles.Owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatalf("migrate to the latest as the owner: %v", err)
	}
	service, err := postgres.Open(ctx, roles.Service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { service.Close() })
	tok, err := service.Token(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != vault.InitialTokenName || tok.Scope != vault.TokenFull || !tok.LastUsedAt.IsZero() || !tok.ExpiresAt.IsZero() {
		t.Fatalf("an old token after the migration: %+v", tok)
	}
	svc := vault.NewService(service, testvault.MustKeyring(t), vault.Options{})
	cred, err := svc.AuthenticateToken(ctx, id+".old-secret")
	if err != nil || cred.UserID != "usr_old" || cred.Scope != vault.TokenFull {
		t.Fatalf("the old token, as the service role: %+v, %v", cred, err)
	}
	list, err := svc.Tokens(ctx, "usr_old")
	if err != nil || len(list) != 1 || list[0].LastUsedAt.IsZero() {
		t.Fatalf("the old token's list after a use: %+v, %v", list, err)
	}
}
