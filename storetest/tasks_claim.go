package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

func testTaskClaimOrder(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p, bp := f.mustProfile(alice, "p"), f.mustProfile(bob, "p")
	_, err := f.store.ClaimTask(f.ctx, "w1")
	wantErr(t, err, vault.ENOTFOUND, "")

	at := f.stamp()
	var queued []*orchestrator.Task
	for i, d := range []time.Duration{3, 1, 2, 1, 0, 1} { // of both users; ties at 1
		user, profile := alice, p.ID
		if i%2 == 1 {
			user, profile = bob, bp.ID
		}
		task := f.newTask(user, profile, fmt.Sprint(i))
		task.CreatedAt = at.Add(d * time.Second)
		queued = append(queued, f.mustCreateTask(task))
	}
	// Tasks that are not queued are never claimed.
	for _, s := range []orchestrator.Status{orchestrator.StatusStopped, orchestrator.StatusRunning, orchestrator.StatusFailed} {
		task := f.newTask(alice, p.ID, string(s))
		task.Status, task.CreatedAt = s, at.Add(-time.Hour)
		f.mustCreateTask(task)
	}
	want := newestFirst(queued)
	slices.Reverse(want) // oldest first

	for i, w := range want {
		worker := fmt.Sprintf("w%d", i%2)
		before := time.Now()
		got := f.mustClaim(worker)
		after := time.Now()
		if got.ID != w.ID {
			t.Fatalf("claim %d: got %s (created %s), want %s (created %s)", i, got.ID, got.CreatedAt, w.ID, w.CreatedAt)
		}
		// ClaimTask stamps UpdatedAt with its own clock.
		if got.UpdatedAt.Before(before.Truncate(time.Microsecond)) || got.UpdatedAt.After(after) {
			t.Errorf("claim %d: updated at %s, not between %s and %s", i, got.UpdatedAt, before, after)
		}
		claimed := *w
		claimed.Status, claimed.Worker, claimed.UpdatedAt = orchestrator.StatusStarting, worker, got.UpdatedAt
		sameTask(t, got, &claimed)
		sameTask(t, f.mustTask(w.UserID, w.ID), &claimed)
	}
	_, err = f.store.ClaimTask(f.ctx, "w1")
	wantErr(t, err, vault.ENOTFOUND, "")

	// A task queued again (a restart) is claimed again.
	again := f.mustUpdate(want[0].ID, func(t *orchestrator.Task) {
		t.Status, t.Worker, t.Attempt = orchestrator.StatusQueued, "", t.Attempt+1
	})
	if got := f.mustClaim("w9"); got.ID != again.ID || got.Attempt != 2 || got.Worker != "w9" {
		t.Errorf("claimed %s attempt %d by %q, want %s attempt 2 by w9", got.ID, got.Attempt, got.Worker, again.ID)
	}
}

func testTaskConcurrentClaims(t *testing.T, f *fixture) {
	const workers, n = 8, 60
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	queued := map[string]bool{}
	for i := range n {
		queued[f.mustQueue(alice, p.ID, fmt.Sprint(i)).ID] = true
	}

	claims := make([][]*orchestrator.Task, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for {
				task, err := f.store.ClaimTask(f.ctx, fmt.Sprintf("w%d", w))
				if vault.ErrorCode(err) == vault.ENOTFOUND {
					return
				}
				if err != nil {
					t.Errorf("worker %d: claim: %v", w, err)
					return
				}
				claims[w] = append(claims[w], task)
			}
		})
	}
	close(start)
	wg.Wait()

	seen := map[string]string{}
	for w, list := range claims {
		worker := fmt.Sprintf("w%d", w)
		for _, task := range list {
			if prev, ok := seen[task.ID]; ok {
				t.Errorf("task %s claimed by %s and %s", task.ID, prev, worker)
			}
			seen[task.ID] = worker
			if !queued[task.ID] {
				t.Errorf("%s claimed %s, which was never queued", worker, task.ID)
			}
			if task.Status != orchestrator.StatusStarting || task.Worker != worker {
				t.Errorf("%s claimed %s as %s by %q", worker, task.ID, task.Status, task.Worker)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d tasks claimed", len(seen), n)
	}
	for id, worker := range seen {
		if got := f.mustTask(alice, id); got.Status != orchestrator.StatusStarting || got.Worker != worker {
			t.Errorf("task %s stored as %s by %q, want starting by %s", id, got.Status, got.Worker, worker)
		}
	}
}

func testTaskActiveTasks(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p, bp := f.mustProfile(alice, "p"), f.mustProfile(bob, "p")
	if list := f.mustActive(""); len(list) != 0 {
		t.Fatalf("fresh store: active %v", taskIDs(list))
	}
	// Of both users, claimed in creation order.
	a1, a2 := f.mustQueue(alice, p.ID, "a1"), f.mustQueue(alice, p.ID, "a2")
	b1, b2 := f.mustQueue(bob, bp.ID, "b1"), f.mustQueue(bob, bp.ID, "b2")
	a3, a4 := f.mustQueue(alice, p.ID, "a3"), f.mustQueue(alice, p.ID, "a4")
	for _, c := range []struct {
		task   *orchestrator.Task
		worker string
	}{{a1, "w1"}, {a2, "w1"}, {b1, "w2"}, {b2, "w2"}, {a3, "w1"}, {a4, "w2"}} {
		if got := f.mustClaim(c.worker); got.ID != c.task.ID {
			t.Fatalf("claimed %s, want %s", got.ID, c.task.ID)
		}
	}
	f.mustQueue(alice, p.ID, "queued") // not active
	now := f.stamp()
	f.mustUpdate(a2.ID, func(x *orchestrator.Task) { x.Status, x.StartedAt = orchestrator.StatusRunning, &now })
	f.mustUpdate(b1.ID, func(x *orchestrator.Task) { x.Status, x.StopRequested = orchestrator.StatusRunning, true })
	f.mustUpdate(a3.ID, func(x *orchestrator.Task) { x.Status = orchestrator.StatusSucceeded })
	f.mustUpdate(a4.ID, func(x *orchestrator.Task) { x.Status = orchestrator.StatusStopped })
	// A task queued again keeps no worker.
	f.mustUpdate(b2.ID, func(x *orchestrator.Task) { x.Status, x.Worker = orchestrator.StatusQueued, "" })

	byID := map[string]*orchestrator.Task{}
	for _, task := range []*orchestrator.Task{a1, a2, b1} {
		byID[task.ID] = f.mustTask(task.UserID, task.ID)
	}
	for _, tc := range []struct {
		worker string
		want   []*orchestrator.Task
	}{
		{"w1", []*orchestrator.Task{a1, a2}},
		{"w2", []*orchestrator.Task{b1}},
		{"", []*orchestrator.Task{a1, a2, b1}},
		{"w3", nil},
	} {
		got := f.mustActive(tc.worker)
		// No order is promised: compared as sets.
		g, w := slices.Sorted(slices.Values(taskIDs(got))), slices.Sorted(slices.Values(taskIDs(tc.want)))
		if !slices.Equal(g, w) {
			t.Errorf("active tasks of %q: got %v, want %v", tc.worker, g, w)
			continue
		}
		for _, task := range got {
			sameTask(t, task, byID[task.ID])
		}
	}
}

// testTaskClaimSkipsUsers: a claim passes over the tasks of the users it is
// told to skip (a worker's users at their share of its slots), and
// QueuedTasks counts a user's queued tasks only.
func testTaskClaimSkipsUsers(t *testing.T, f *fixture) {
	alice, bob, carol := f.mustUser("alice"), f.mustUser("bob"), f.mustUser("carol")
	ap, bp := f.mustProfile(alice, "p"), f.mustProfile(bob, "p")
	at := f.stamp()
	var alices []*orchestrator.Task
	for i := range 3 {
		task := f.newTask(alice, ap.ID, fmt.Sprint(i))
		task.CreatedAt = at.Add(time.Duration(i) * time.Second)
		alices = append(alices, f.mustCreateTask(task))
	}
	late := f.newTask(bob, bp.ID, "late")
	late.CreatedAt = at.Add(time.Hour)
	bobs := f.mustCreateTask(late)
	for user, want := range map[string]int{alice: 3, bob: 1, carol: 0} {
		if n, err := f.store.QueuedTasks(f.ctx, user); err != nil || n != want {
			t.Errorf("QueuedTasks(%s) = %d, %v; want %d", user, n, err, want)
		}
	}
	got, err := f.store.ClaimTask(f.ctx, "w", alice, carol)
	if err != nil || got.ID != bobs.ID {
		t.Fatalf("claim skipping alice: %v, %v; want bob's %s, though alice's are older", got, err, bobs.ID)
	}
	_, err = f.store.ClaimTask(f.ctx, "w", alice)
	wantErr(t, err, vault.ENOTFOUND, "")
	if got := f.mustClaim("w"); got.ID != alices[0].ID {
		t.Fatalf("claim skipping nobody: %s, want alice's oldest %s", got.ID, alices[0].ID)
	}
	if n, err := f.store.QueuedTasks(f.ctx, alice); err != nil || n != 2 {
		t.Errorf("QueuedTasks(alice) after a claim = %d, %v; want 2", n, err)
	}
}
