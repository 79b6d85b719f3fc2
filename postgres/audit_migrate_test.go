package postgres_test

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// TestMigrateKeepsTheChain writes a chain as the schema before linking
// (migrations 1 to 5) stored it, each event chained in its own insert,
// then migrates to the latest schema: the chain still verifies, and the
// next event is linked after its head.
func TestMigrateKeepsTheChain(t *testing.T) {
	url := testenv.RequirePostgres(t)
	ctx := t.Context()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	old := fstest.MapFS{}
	for _, name := range []string{"00001_init.sql", "00002_tasks.sql", "00003_secret_versions.sql", "00004_audit.sql", "00005_rls.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "migrations", "postgres", name))
		if err != nil {
			t.Fatal(err)
		}
		old[name] = &fstest.MapFile{Data: b}
	}
	pool, err := stdlibPool(t, url)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, pool, old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate to 00005: %v", err)
	}
	var prev []byte
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for seq := int64(1); seq <= 3; seq++ {
		ev := &vault.AuditEvent{Time: base.Add(time.Duration(seq) * time.Minute), Action: vault.ActionAuthFailed,
			TargetType: vault.TargetToken, TargetID: "tok_old", Details: map[string]any{"reason": "old"}}
		details, err := ev.Chain(seq, prev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.ExecContext(ctx, `INSERT INTO audit_events (seq, time, action, target_type, target_id, details, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, ev.Seq, ev.Time, ev.Action, ev.TargetType, ev.TargetID, string(details), ev.PrevHash, ev.Hash); err != nil {
			t.Fatalf("insert event %d as 00004 does: %v", seq, err)
		}
		prev = ev.Hash
	}

	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate to the latest: %v", err)
	}
	rep, err := vault.VerifyAudit(ctx, db)
	if err != nil || rep.Break != nil || rep.Events != 3 || rep.Head.Seq != 3 {
		t.Fatalf("verify after the migration: %+v, %v; want the 3 old events intact", rep, err)
	}
	if err := db.AppendAuditEvent(ctx, &vault.AuditEvent{Time: base.Add(time.Hour), Action: vault.ActionAuthFailed}); err != nil {
		t.Fatal(err)
	}
	rep, err = vault.VerifyAudit(ctx, db)
	if err != nil || rep.Break != nil || rep.Events != 4 || rep.Linked != 0 {
		t.Fatalf("verify after a new event: %+v, %v; want 4 intact, the new one linked by its append", rep, err)
	}
	if list, err := db.AuditChain(ctx, 3, 10); err != nil || len(list) != 1 || !bytes.Equal(list[0].PrevHash, prev) {
		t.Fatalf("the new event does not follow the old head: %v, %v", list, err)
	}
}

// stdlibPool opens a database/sql pool on url, closed when the test ends.
func stdlibPool(t *testing.T, url string) (*sql.DB, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db, nil
}
