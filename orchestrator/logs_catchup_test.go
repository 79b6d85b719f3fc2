package orchestrator_test

import (
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
