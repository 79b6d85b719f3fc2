package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// testAuditPruneInBatches prunes across several batches, each moving the
// anchor on, and checks that the chain verifies after each prune. The
// prune batch is set to 3, so that 8 and then 3 events take several.
func testAuditPruneInBatches(t *testing.T, f *fixture) {
	defer f.h.SetPruneBatch(3)()
	st := f.store
	ctx := context.Background()
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 11 {
		ev := &vault.AuditEvent{Time: base.Add(time.Duration(i) * time.Hour), Action: vault.ActionAuthFailed}
		if err := st.AppendAuditEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	n, head, err := st.PruneAudit(ctx, base.Add(8*time.Hour))
	if err != nil || n != 8 || head.FirstSeq != 9 || head.Seq != 11 {
		t.Fatalf("prune: %d, %+v, %v; want 8 deleted, first seq 9", n, head, err)
	}
	rep, err := vault.VerifyAudit(ctx, st)
	if err != nil || rep.Break != nil || rep.Events != 3 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	n, head, err = st.PruneAudit(ctx, base.Add(100*time.Hour))
	if err != nil || n != 3 || head.FirstSeq != 12 {
		t.Fatalf("prune all: %d, %+v, %v", n, head, err)
	}
	if rep, err := vault.VerifyAudit(ctx, st); err != nil || rep.Break != nil || rep.Events != 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
