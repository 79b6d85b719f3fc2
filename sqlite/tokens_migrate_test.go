package sqlite_test

import (
	"crypto/sha256"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// migratedTo00007 opens the SQLite file at path with the migrations up to
// 00007 applied (the schema before env delivery and tokens as a
// resource), for tests of later migrations; it closes in t.Cleanup.
func migratedTo00007(t *testing.T, path string) *sql.DB {
	t.Helper()
	old := fstest.MapFS{}
	for _, name := range []string{"00001_init.sql", "00002_tasks.sql", "00003_secret_versions.sql", "00004_audit.sql", "00007_sandbox.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "migrations", "sqlite", name))
		if err != nil {
			t.Fatal(err)
		}
		old[name] = &fstest.MapFile{Data: b}
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(t.Context()); err != nil {
		t.Fatalf("migrate to 00007: %v", err)
	}
	return raw
}

// TestMigrateTokens: tokens made before tokens had names and scopes (by
// `envvault user create` or `envvault dev`) become full tokens named
// "initial", never used and never expiring, and still authenticate.
func TestMigrateTokens(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "envvault.db")
	raw := migratedTo00007(t, path)
	const id = "tok_OLDOLDOLDOLDOLDOLDOLD"
	sum := sha256.Sum256([]byte("old-secret"))
	if _, err := raw.ExecContext(ctx, `INSERT INTO users (id, name, created_at) VALUES ('usr_old', 'old', 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO tokens (id, user_id, hash, created_at) VALUES (?, 'usr_old', ?, 1)`, id, sum[:]); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db := mustOpenPath(t, path) // migrates to the latest
	tok, err := db.Token(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != vault.InitialTokenName || tok.Scope != vault.TokenFull || !tok.LastUsedAt.IsZero() || !tok.ExpiresAt.IsZero() {
		t.Fatalf("an old token after the migration: %+v", tok)
	}
	svc := vault.NewService(db, testvault.MustKeyring(t), vault.Options{})
	cred, err := svc.AuthenticateToken(ctx, id+".old-secret")
	if err != nil || cred.UserID != "usr_old" || cred.Scope != vault.TokenFull {
		t.Fatalf("the old token: %+v, %v", cred, err)
	}
}
