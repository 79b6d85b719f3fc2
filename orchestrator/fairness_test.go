package orchestrator_test

import (
	"context"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// flood is a worker of two slots over a fresh SQLite store, alice's 30
// tasks queued on it, each holding its slot for hold (a sleep), and bob,
// who has none yet.
type flood struct {
	*fixture
	o      *orchestrator.Orchestrator
	alices []*orchestrator.Task
	bob    string
	bobs   string // bob's profile
}

func newFlood(t *testing.T, share int, hold string) *flood {
	t.Helper()
	f := &flood{fixture: newFixture(t, sqliteBackend(t).open(t), true)}
	ctx := context.Background()
	u, _, err := f.svc.CreateUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	f.bob = u.ID
	t.Cleanup(func() { removeContainersOf(t, f.cli, f.bob) })
	p, err := f.svc.CreateProfile(ctx, f.bob, vault.ProfileInput{Name: "b", Image: f.shellImage, Command: []string{"/bin/sh", "-c", "sleep " + hold}})
	if err != nil {
		t.Fatal(err)
	}
	f.bobs = p.ID
	f.o = orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: f.runner, Worker: "fair-" + vault.NewID(""),
		Poll: 50 * time.Millisecond, MaxRunning: 2, UserSharePercent: share})
	prof := f.profile(f.shellImage, "/bin/sh", "-c", "sleep "+hold)
	for range 30 {
		f.alices = append(f.alices, f.create(f.o, prof))
	}
	f.run(f.o)
	return f
}

// alicesNow reads alice's tasks again.
func (f *flood) alicesNow() []*orchestrator.Task {
	out := make([]*orchestrator.Task, len(f.alices))
	for i, a := range f.alices {
		out[i] = f.task(a.ID)
	}
	return out
}

// awaitAlice waits until ok accepts alice's tasks.
func (f *flood) awaitAlice(what string, ok func([]*orchestrator.Task) bool) []*orchestrator.Task {
	f.t.Helper()
	deadline := time.After(awaitTimeout)
	for {
		changed := f.o.Changes()
		if list := f.alicesNow(); ok(list) {
			return list
		}
		select {
		case <-changed:
		case <-deadline:
			f.t.Fatalf("alice's tasks: not %s after %v", what, awaitTimeout)
		}
	}
}

// bobStarts queues bob's task and waits until it runs.
func (f *flood) bobStarts() *orchestrator.Task {
	f.t.Helper()
	ctx := context.Background()
	task, err := f.o.CreateTask(ctx, f.bob, f.bobs, "")
	if err != nil {
		f.t.Fatal(err)
	}
	deadline := time.After(awaitTimeout)
	for {
		changed := f.o.Changes()
		cur, err := f.store.Task(ctx, f.bob, task.ID)
		if err != nil {
			f.t.Fatal(err)
		}
		if cur.Status != orchestrator.StatusQueued && cur.Status != orchestrator.StatusStarting {
			if cur.Status != orchestrator.StatusRunning && !cur.Status.Done() || cur.StartedAt == nil {
				f.t.Fatalf("bob's task: %s %q", cur.Status, cur.Error)
			}
			return cur
		}
		select {
		case <-changed:
		case <-deadline:
			f.t.Fatalf("bob's task still %s after %v behind alice's 30", cur.Status, awaitTimeout)
		}
	}
}

func count(list []*orchestrator.Task, ok func(*orchestrator.Task) bool) int {
	n := 0
	for _, t := range list {
		if ok(t) {
			n++
		}
	}
	return n
}

// TestFairnessTurnover: alice holds both slots of the worker (her share
// is all of them) with 28 more queued; bob's one task, queued after, gets
// the next slot that frees. Of alice's tasks, at most one starts between
// his being queued and his start: the other slot's, when both free at
// once (a container's start takes as long as it takes, so the task claimed
// second may run first). First come, first served would start 28 first.
func TestFairnessTurnover(t *testing.T) {
	t.Parallel()
	f := newFlood(t, 100, "2")
	f.awaitAlice("two running and none starting", func(l []*orchestrator.Task) bool {
		return count(l, func(t *orchestrator.Task) bool { return t.Status == orchestrator.StatusRunning }) == 2 &&
			count(l, func(t *orchestrator.Task) bool { return t.Status == orchestrator.StatusStarting }) == 0
	})
	queuedAt := time.Now()
	bob := f.bobStarts()
	list := f.alicesNow()
	before := count(list, func(a *orchestrator.Task) bool {
		return a.StartedAt != nil && a.StartedAt.After(queuedAt) && a.StartedAt.Before(*bob.StartedAt)
	})
	if before > 1 {
		t.Errorf("%d of alice's tasks started after bob's was queued and before it started: want at most the other slot's one", before)
	}
	if finished := count(list, func(t *orchestrator.Task) bool { return t.Status.Done() }); finished > 2 {
		t.Errorf("%d of alice's tasks finished before bob's started: want him in at the first turnover", finished)
	}
	t.Logf("bob's task waited %v for a slot; %d of alice's started meanwhile", bob.StartedAt.Sub(queuedAt).Round(time.Millisecond), before)
}

// TestFairnessShare: with a share of half the slots, alice's flood holds
// one of the two and bob's task starts at once in the other.
func TestFairnessShare(t *testing.T) {
	t.Parallel()
	f := newFlood(t, 50, "3")
	f.awaitAlice("one running", func(l []*orchestrator.Task) bool {
		return count(l, func(t *orchestrator.Task) bool { return t.Status == orchestrator.StatusRunning }) == 1
	})
	bob := f.bobStarts()
	list := f.alicesNow()
	if n := count(list, func(t *orchestrator.Task) bool { return t.Status.Done() }); n != 0 {
		t.Errorf("%d of alice's tasks finished before bob's started: want bob in the free slot at once", n)
	}
	if n := count(list, func(t *orchestrator.Task) bool { return !t.Status.Done() && t.Status != orchestrator.StatusQueued }); n != 1 {
		t.Errorf("alice holds %d slots, want 1 (half of 2)", n)
	}
	if bob.Status != orchestrator.StatusRunning {
		t.Errorf("bob's task is %s", bob.Status)
	}
}
