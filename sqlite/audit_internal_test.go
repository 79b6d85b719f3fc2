package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// TestPruneAuditInBatches prunes across several batches: each moves the
// anchor on, and the chain verifies after.
func TestPruneAuditInBatches(t *testing.T) {
	old := pruneBatch
	pruneBatch = 3
	t.Cleanup(func() { pruneBatch = old })
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "envvault.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 11 {
		ev := &vault.AuditEvent{Time: base.Add(time.Duration(i) * time.Hour), Action: vault.ActionAuthFailed}
		if err := db.AppendAuditEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	n, head, err := db.PruneAudit(ctx, base.Add(8*time.Hour))
	if err != nil || n != 8 || head.FirstSeq != 9 || head.Seq != 11 {
		t.Fatalf("prune: %d, %+v, %v; want 8 deleted, first seq 9", n, head, err)
	}
	rep, err := vault.VerifyAudit(ctx, db)
	if err != nil || rep.Break != nil || rep.Events != 3 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	n, head, err = db.PruneAudit(ctx, base.Add(100*time.Hour))
	if err != nil || n != 3 || head.FirstSeq != 12 {
		t.Fatalf("prune all: %d, %+v, %v", n, head, err)
	}
	if rep, err := vault.VerifyAudit(ctx, db); err != nil || rep.Break != nil || rep.Events != 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
