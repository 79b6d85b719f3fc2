package orchestrator_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// finishCounter is an Observer that counts TaskFinished by state.
type finishCounter struct {
	mu       sync.Mutex
	finished map[string]int
}

func (c *finishCounter) TaskStarted(time.Duration)     {}
func (c *finishCounter) LogsMasked(int, time.Duration) {}
func (c *finishCounter) TaskFinished(state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished[state]++
}

func (c *finishCounter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.finished)
}

// TestWaitingTasksObserved: a waiting task that ends without starting is
// counted as finished once: cancelled when its request is cancelled,
// failed when it expires; a cancel that finds its task no longer waiting
// counts nothing. (The tasks never reach the backend: it runs nothing.)
func TestWaitingTasksObserved(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	ctx := context.Background()
	obs := &finishCounter{finished: map[string]int{}}
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: newMemBackend(), Worker: "w-" + vault.NewID(""),
		Poll: 50 * time.Millisecond, SecretRequestTTL: time.Hour, Observer: obs})
	stop := f.run(o)
	needs := func(name string) string {
		p, err := f.svc.CreateProfile(ctx, f.user, vault.ProfileInput{Name: name, Image: "img", Command: []string{"/bin/true"},
			RequiredSecrets: []vault.RequiredSecret{{Name: "NEVER_GIVEN"}}})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	p := needs("cancelled")
	first, second := f.create(o, p), f.create(o, p)
	f.await(first.ID, "awaiting secrets", isAwaiting, o)
	f.await(second.ID, "awaiting secrets", isAwaiting, o)
	if _, err := o.StopTask(ctx, f.user, second.ID); err != nil {
		t.Fatal(err)
	}
	closed, err := f.svc.CancelSecretRequest(ctx, f.user, f.pendingRequest().ID)
	if err != nil {
		t.Fatal(err)
	}
	o.CancelWaiting(ctx, closed)
	o.CancelWaiting(ctx, closed) // again: nothing left waiting
	if got := f.task(first.ID).Status; got != orchestrator.StatusCancelled {
		t.Fatalf("after the cancel: %s", got)
	}
	if got := obs.counts(); !maps.Equal(got, map[string]int{"cancelled": 1}) {
		t.Errorf("finished %v after the cancel, want cancelled 1 (the stopped task is not the request's to count)", got)
	}

	// Expiry: the worker's pass fails the task (the only worker now).
	stop()
	short := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: newMemBackend(), Worker: "w-" + vault.NewID(""),
		Poll: 50 * time.Millisecond, SecretRequestTTL: 200 * time.Millisecond, Observer: obs})
	f.run(short)
	third := f.create(short, needs("expires"))
	f.await(third.ID, "failed", isDone, short)
	if got := f.task(third.ID).Status; got != orchestrator.StatusFailed {
		t.Fatalf("after the expiry: %s", got)
	}
	if got := obs.counts(); !maps.Equal(got, map[string]int{"cancelled": 1, "failed": 1}) {
		t.Errorf("finished %v after the expiry, want cancelled 1 and failed 1", got)
	}
}
