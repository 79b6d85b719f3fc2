package orchestrator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/mask"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// TestLogsCaughtUpAfterAnEarlyEnd: a followed log stream that the engine
// ends before the container's last output (the Docker Engine 20.10 has, at
// a chatty container's exit) loses nothing: once the container has exited,
// the rest is read from its whole log, after the bytes already stored, and
// masked like the rest, a value cut across the two reads included.
func TestLogsCaughtUpAfterAnEarlyEnd(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	const value = "s3cr3t-value-caught-up"
	f.secret("TOKEN", value)
	mem := newMemBackend()
	out := "first line\nthe token is " + value + "\nlast line\n"
	mem.followCut = len("first line\nthe token is s3cr3t") // inside the value
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: mem, Worker: "w-" + vault.NewID(""),
		Poll: 50 * time.Millisecond})
	f.run(o)
	task := f.create(o, f.profile("img", "/bin/true"))
	id := "mem0001" // the backend's first container
	mem.await(t, "waited for", waited(id))
	mem.print(id, out)
	mem.exit(id, 0)
	if done := f.await(task.ID, "finished", isDone, o); done.Status != orchestrator.StatusSucceeded {
		t.Fatalf("finished: %+v", done)
	}
	if got, want := f.logs(task.ID), "first line\nthe token is "+mask.Placeholder+"\nlast line\n"; got != want {
		t.Errorf("logs %q, want %q", got, want)
	}
}

// TestLogsNotCaughtUpPastTheBound: past 16 MiB read, an early end of the
// follow is not caught up (the whole log is not read again): what was
// read is stored, the rest is not.
func TestLogsNotCaughtUpPastTheBound(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	mem := newMemBackend()
	const bound = 16 << 20
	mem.followCut = bound + 1
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: mem, Worker: "w-" + vault.NewID(""),
		Poll: 50 * time.Millisecond})
	f.run(o)
	task := f.create(o, f.profile("img", "/bin/true"))
	id := "mem0001"
	mem.await(t, "waited for", waited(id))
	mem.print(id, strings.Repeat("x", bound+1)+"the rest\n")
	mem.exit(id, 0)
	if done := f.await(task.ID, "finished", isDone, o); done.Status != orchestrator.StatusSucceeded {
		t.Fatalf("finished: %+v", done)
	}
	if got := f.logs(task.ID); len(got) != bound+1 || strings.Contains(got, "the rest") {
		t.Errorf("stored %d bytes, the rest caught up: %v; want %d bytes, not caught up", len(got), strings.Contains(got, "the rest"), bound+1)
	}
}

// TestLogLimit: a container's output past MaxLogBytes is not stored: the
// first MaxLogBytes bytes are, then one line saying so; the task ends as
// it would have.
func TestLogLimit(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	mem := newMemBackend()
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: mem, Worker: "w-" + vault.NewID(""),
		Poll: 50 * time.Millisecond, MaxLogBytes: 1000})
	f.run(o)
	task := f.create(o, f.profile("img", "/bin/true"))
	id := "mem0001"
	mem.await(t, "waited for", waited(id))
	mem.print(id, strings.Repeat("a", 999)+"bc"+strings.Repeat("d", 100_000))
	mem.exit(id, 0)
	if done := f.await(task.ID, "finished", isDone, o); done.Status != orchestrator.StatusSucceeded {
		t.Fatalf("finished: %+v", done)
	}
	want := strings.Repeat("a", 999) + "b\n--- envvault: the output passed the log limit of 1000 bytes (--max-task-log-mib); the rest is not stored ---\n"
	if got := f.logs(task.ID); got != want {
		t.Errorf("logs: %d bytes ending %q, want %d ending %q", len(got), got[max(0, len(got)-120):], len(want), want[len(want)-120:])
	}
}
