package storetest

import (
	"context"
	"maps"
	"testing"

	"github.com/envvault/envvault/orchestrator"
)

// liveTaskCounter is what the metrics read from a store at each scrape
// (metrics.StoreStats); every store here has it.
type liveTaskCounter interface {
	LiveTaskCounts(ctx context.Context) (map[string]int, error)
}

// testTaskLiveCounts: the live task counts are every user's queued,
// awaiting-secrets, starting and running tasks by status, and never a
// finished (or cancelled) one.
func testTaskLiveCounts(t *testing.T, f *fixture) {
	st, ok := f.store.(liveTaskCounter)
	if !ok {
		t.Fatalf("%T has no LiveTaskCounts (the metrics' task counts)", f.store)
	}
	want := func(w map[string]int) {
		t.Helper()
		got, err := st.LiveTaskCounts(f.ctx)
		if err != nil {
			t.Fatalf("live task counts: %v", err)
		}
		// A status with no task may be absent or 0.
		maps.DeleteFunc(got, func(_ string, n int) bool { return n == 0 })
		if !maps.Equal(got, w) {
			t.Fatalf("live task counts %v, want %v", got, w)
		}
	}
	want(map[string]int{})
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	pa, pb := f.mustProfile(alice, "a"), f.mustProfile(bob, "b")
	f.mustQueue(alice, pa.ID, "1")
	f.mustQueue(alice, pa.ID, "2")
	f.mustQueue(bob, pb.ID, "3")
	want(map[string]int{"queued": 3})
	first := f.mustClaim("w1")
	want(map[string]int{"queued": 2, "starting": 1})
	f.mustUpdate(first.ID, func(t *orchestrator.Task) { t.Status = orchestrator.StatusRunning })
	second := f.mustClaim("w1")
	want(map[string]int{"queued": 1, "starting": 1, "running": 1})
	f.mustUpdate(first.ID, func(t *orchestrator.Task) { t.Status = orchestrator.StatusSucceeded })
	f.mustUpdate(second.ID, func(t *orchestrator.Task) { t.Status = orchestrator.StatusFailed })
	want(map[string]int{"queued": 1})
	// Waiting for secrets is live (index tasks_awaiting); cancelled is not.
	waiting, cancelled := f.mustQueue(alice, pa.ID, "4"), f.mustQueue(bob, pb.ID, "5")
	f.mustUpdate(waiting.ID, func(t *orchestrator.Task) { t.Status = orchestrator.StatusAwaitingSecrets })
	f.mustUpdate(cancelled.ID, func(t *orchestrator.Task) { t.Status = orchestrator.StatusAwaitingSecrets })
	want(map[string]int{"queued": 1, "awaiting_secrets": 2})
	f.mustUpdate(cancelled.ID, func(t *orchestrator.Task) { t.Status = orchestrator.StatusCancelled })
	want(map[string]int{"queued": 1, "awaiting_secrets": 1})
}
