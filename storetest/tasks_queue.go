package storetest

import (
	"strings"
	"sync"
	"testing"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// testTaskQueueLimit: CreateQueuedTask never takes a user past the limit,
// however many creations race (from the pool's connections at once); the
// refused get ELIMIT naming the count and insert nothing; another user's
// queue and a task that left the queue are not counted.
func testTaskQueueLimit(t *testing.T, f *fixture) {
	ql, ok := f.store.(orchestrator.QueueLimiter)
	if !ok {
		t.Fatalf("%T has no CreateQueuedTask (the exact per-user queue limit)", f.store)
	}
	const limit, racers = 5, 24
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	pa, pb := f.mustProfile(alice, "a"), f.mustProfile(bob, "b")
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() { errs[i] = ql.CreateQueuedTask(f.ctx, f.newTask(alice, pa.ID, "race"), limit) })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case vault.ErrorCode(err) != vault.ELIMIT || !strings.Contains(err.Error(), "5 tasks queued"):
			t.Errorf("a refused creation: %v, want ELIMIT naming 5 tasks queued", err)
		}
	}
	if n, err := f.store.QueuedTasks(f.ctx, alice); created != limit || err != nil || n != limit {
		t.Fatalf("%d of %d racing creations passed, %d queued (%v); want exactly %d", created, racers, n, err, limit)
	}
	if err := ql.CreateQueuedTask(f.ctx, f.newTask(bob, pb.ID, "other user"), limit); err != nil {
		t.Errorf("another user's task: %v", err)
	}
	if err := ql.CreateQueuedTask(f.ctx, f.newTask(alice, "prf_missing", "x"), limit+1); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("a task of a missing profile: %v, want ENOTFOUND", err)
	}
	f.mustClaim("w1") // alice's oldest leaves the queue
	if err := ql.CreateQueuedTask(f.ctx, f.newTask(alice, pa.ID, "after a claim"), limit); err != nil {
		t.Errorf("a creation after a claim: %v", err)
	}
	if n, err := f.store.QueuedTasks(f.ctx, alice); err != nil || n != limit {
		t.Errorf("%d queued (%v), want %d", n, err, limit)
	}
}
