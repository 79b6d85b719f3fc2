package orchestrator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/mask"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// memTaskLogs runs one task on an in-memory backend whose followed log
// streams end after followCut bytes (0: at the end), with the log limit
// maxLog (0: the default) and a secret TOKEN of value token; its container
// prints out and exits 0. It returns the logs stored.
func memTaskLogs(t *testing.T, followCut int, maxLog int64, token, out string) string {
	t.Helper()
	f := newFixture(t, sqliteBackend(t).open(t), false)
	f.secret("TOKEN", token)
	mem := newMemBackend()
	mem.followCut = followCut
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: mem, Worker: "w-" + vault.NewID(""),
		Poll: 50 * time.Millisecond, MaxLogBytes: maxLog})
	f.run(o)
	task := f.create(o, f.profile("img", "/bin/true"))
	id := "mem0001" // the backend's first container
	mem.await(t, "waited for", waited(id))
	mem.print(id, out)
	mem.exit(id, 0)
	if done := f.await(task.ID, "finished", isDone, o); done.Status != orchestrator.StatusSucceeded {
		t.Fatalf("finished: %+v", done)
	}
	return f.logs(task.ID)
}

// TestLogsCaughtUpAfterAnEarlyEnd: a followed log stream that the engine
// ends before the container's last output (the Docker Engine 20.10 has, at
// a chatty container's exit) loses nothing: once the container has exited,
// the rest is read from its whole log, after the bytes already stored, and
// masked like the rest, a value cut across the two reads included.
func TestLogsCaughtUpAfterAnEarlyEnd(t *testing.T) {
	const value = "s3cr3t-value-caught-up"
	cut := len("first line\nthe token is s3cr3t") // inside the value
	got := memTaskLogs(t, cut, 0, value, "first line\nthe token is "+value+"\nlast line\n")
	if want := "first line\nthe token is " + mask.Placeholder + "\nlast line\n"; got != want {
		t.Errorf("logs %q, want %q", got, want)
	}
}

// TestLogsNotCaughtUpPastTheBound: past 16 MiB read, an early end of the
// follow is not caught up (the whole log is not read again): what was
// read is stored, the rest is not.
func TestLogsNotCaughtUpPastTheBound(t *testing.T) {
	const bound = 16 << 20
	got := memTaskLogs(t, bound+1, 0, "token-not-printed", strings.Repeat("x", bound+1)+"the rest\n")
	if len(got) != bound+1 || strings.Contains(got, "the rest") {
		t.Errorf("stored %d bytes, the rest caught up: %v; want %d bytes, not caught up", len(got), strings.Contains(got, "the rest"), bound+1)
	}
}

// TestLogLimit: a container's output past MaxLogBytes is not stored: the
// first MaxLogBytes bytes are, then one line saying so; the task ends as
// it would have.
func TestLogLimit(t *testing.T) {
	got := memTaskLogs(t, 0, 1000, "token-not-printed", strings.Repeat("a", 999)+"bc"+strings.Repeat("d", 100_000))
	want := strings.Repeat("a", 999) + "b\n--- envvault: the output passed the log limit of 1000 bytes (--max-task-log-mib); the rest is not stored ---\n"
	if got != want {
		t.Errorf("logs: %d bytes ending %q, want %d ending %q", len(got), got[max(0, len(got)-120):], len(want), want[len(want)-120:])
	}
}
