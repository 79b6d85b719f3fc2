package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/storetest"
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
	storetest.RunAuditPruneInBatches(t, db)
}
