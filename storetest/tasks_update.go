package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

func testTaskUpdateRoundTrip(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")

	started, finished := f.stamp(), f.stamp()
	sources := []orchestrator.EnvSource{
		{Name: "ANTHROPIC_API_KEY", Source: orchestrator.SourceBaseline},
		{Name: "DEBUG", Source: orchestrator.SourceProfile},
		{Name: "GITHUB_TOKEN", Source: orchestrator.SourceSecret, SecretID: "sec_abc", Scope: string(vault.ScopeAgents), Version: 7},
		{Name: "NPM_TOKEN", Source: orchestrator.SourceSecret, SecretID: "sec_def", Scope: string(vault.ScopeAll), Version: 1},
		{Name: "TASK_ID", Source: orchestrator.SourceTask},
	}
	steps := []struct {
		name   string
		change func(*orchestrator.Task)
	}{
		{"every field set", func(x *orchestrator.Task) {
			code := 137
			x.Status, x.ExitCode, x.ContainerID, x.Error = orchestrator.StatusFailed, &code, "0123abcd", "exited with code 137 – “killed”"
			x.EnvSources, x.Worker, x.Attempt = sources, "host-1", 4
			x.StopRequested, x.RestartRequested = true, true
			x.UpdatedAt, x.StartedAt, x.FinishedAt = f.stamp(), &started, &finished
		}},
		{"exit code 0 is not nil", func(x *orchestrator.Task) {
			code := 0
			x.Status, x.ExitCode, x.Error = orchestrator.StatusSucceeded, &code, ""
			x.UpdatedAt = f.stamp()
		}},
		{"negative exit code", func(x *orchestrator.Task) {
			code := -1
			x.ExitCode = &code
		}},
		{"every field cleared", func(x *orchestrator.Task) {
			x.Status, x.ExitCode, x.ContainerID, x.Error = orchestrator.StatusQueued, nil, "", ""
			x.EnvSources, x.Worker, x.Attempt = nil, "", 5
			x.StopRequested, x.RestartRequested = false, false
			x.UpdatedAt, x.StartedAt, x.FinishedAt = f.stamp(), nil, nil
		}},
		{"empty env sources", func(x *orchestrator.Task) {
			x.EnvSources = []orchestrator.EnvSource{}
			x.Status = orchestrator.StatusRunning
		}},
		{"each status", func(x *orchestrator.Task) { x.Status = orchestrator.StatusStopped }},
	}
	want := task
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			f := f.sub(t)
			next := *want
			step.change(&next)
			got, err := f.store.UpdateTask(f.ctx, task.ID, func(cur *orchestrator.Task) error {
				// fn is given the task as stored.
				sameTask(t, cur, want)
				*cur = next
				return nil
			})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			sameTask(t, got, &next)
			sameTask(t, f.mustTask(alice, task.ID), &next)
			want = &next
		})
	}
	for _, s := range []orchestrator.Status{orchestrator.StatusQueued, orchestrator.StatusStarting, orchestrator.StatusRunning,
		orchestrator.StatusSucceeded, orchestrator.StatusFailed, orchestrator.StatusStopped,
		orchestrator.StatusAwaitingSecrets, orchestrator.StatusCancelled} {
		if got := f.mustUpdate(task.ID, func(x *orchestrator.Task) { x.Status = s }); got.Status != s {
			t.Errorf("status %s written as %s", s, got.Status)
		}
		if got := f.mustTask(alice, task.ID); got.Status != s {
			t.Errorf("status %s read back as %s", s, got.Status)
		}
	}
}

func testTaskFailedUpdateChangesNothing(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")
	f.mustAppend(task.ID, "log")
	before := f.mustTask(alice, task.ID)

	scribble := func(x *orchestrator.Task) {
		code := 1
		x.Status, x.ExitCode, x.ContainerID, x.Error, x.Worker = orchestrator.StatusFailed, &code, "c", "e", "w"
		x.EnvSources = []orchestrator.EnvSource{{Name: "X", Source: orchestrator.SourceProfile}}
		x.Attempt, x.StopRequested, x.RestartRequested, x.UpdatedAt = 9, true, true, f.stamp()
	}
	errBoom := errors.New("boom")
	_, err := f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
		scribble(x)
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("UpdateTask returned %v, want fn's error", err)
	}
	sameTask(t, f.mustTask(alice, task.ID), before)

	// fn's vault error keeps its code.
	_, err = f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
		scribble(x)
		return vault.Invalid("status", "no")
	})
	wantErr(t, err, vault.EINVALID, "status")
	sameTask(t, f.mustTask(alice, task.ID), before)

	// The fields fixed at creation cannot be changed.
	bob := f.mustUser("bob")
	for _, tc := range []struct {
		name   string
		change func(*orchestrator.Task)
	}{
		{"id", func(x *orchestrator.Task) { x.ID = vault.NewID(vault.PrefixTask) }},
		{"user", func(x *orchestrator.Task) { x.UserID = bob }},
		{"profile", func(x *orchestrator.Task) { x.ProfileID = "prf_other" }},
		{"prompt", func(x *orchestrator.Task) { x.Prompt = "other" }},
		{"created_at", func(x *orchestrator.Task) { x.CreatedAt = x.CreatedAt.Add(time.Second) }},
	} {
		_, err := f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
			scribble(x)
			tc.change(x)
			return nil
		})
		if err == nil {
			t.Errorf("changing the %s was not refused", tc.name)
		}
		sameTask(t, f.mustTask(alice, task.ID), before)
	}
	f.wantNoTask(bob, task.ID)

	called := false
	_, err = f.store.UpdateTask(f.ctx, "tsk_nonexistent", func(*orchestrator.Task) error { called = true; return nil })
	wantErr(t, err, vault.ENOTFOUND, "")
	if called {
		t.Errorf("fn was called for a task that does not exist")
	}
	if chunks := f.mustLogs(task.ID, 0); len(chunks) != 1 {
		t.Errorf("failed updates touched the logs: %d chunks", len(chunks))
	}
}

func testTaskConcurrentUpdates(t *testing.T, f *fixture) {
	// Each update reads Attempt and writes it plus one: without the row
	// lock, updates would read the same value and increments be lost.
	const each = 10
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")
	for _, err := range race(func(int) error {
		for range each {
			if _, err := f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
				x.Attempt++
				return nil
			}); err != nil {
				return fmt.Errorf("update: %w", err)
			}
		}
		return nil
	}) {
		if err != nil {
			t.Error(err)
		}
	}
	if got := f.mustTask(alice, task.ID).Attempt; got != 1+racers*each {
		t.Errorf("attempt %d after %d increments from 1, want %d", got, racers*each, 1+racers*each)
	}
}
