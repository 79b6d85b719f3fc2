package orchestrator_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// TestRecoveryRemovesLeftovers: a worker killed after it recorded a
// task's end but before it removed the container leaves the container
// behind (a window of SIGKILL under load, as cmd/envvault's
// TestSeveralWorkersUnderLoad deals); the next start of any worker on the
// engine removes it. The
// container of another worker's running task, and one of a task this
// database does not know (another envvault's on the same engine), stay.
func TestRecoveryRemovesLeftovers(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testRecoveryRemovesLeftovers(t, memWorld(t)) })
	t.Run("docker", func(t *testing.T) { testRecoveryRemovesLeftovers(t, dockerWorld(t)) })
	t.Run("swarm", func(t *testing.T) { testRecoveryRemovesLeftovers(t, swarmWorld(t)) })
}

func testRecoveryRemovesLeftovers(t *testing.T, w *recoveryWorld) {
	f := w.f
	ctx := context.Background()
	prof := f.profile(w.image, w.command...)
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: w.backend, Worker: "w-dead", Poll: 50 * time.Millisecond})
	// leave claims the next queued task for worker and leaves its
	// container in state, the task recorded as status.
	leave := func(worker string, state orchestrator.State, status orchestrator.Status) (*orchestrator.Task, string) {
		task := f.create(o, prof)
		if c, err := f.store.ClaimTask(ctx, worker); err != nil || c.ID != task.ID {
			t.Fatalf("claim: %v, %v", c, err)
		}
		id := w.leave(t, orchestrator.Spec{TaskID: task.ID, Name: orchestrator.ContainerName(task.ID, 1),
			Env: map[string]string{"TOKEN": "x", "TASK_ID": task.ID}, Sandbox: vault.SandboxSettings{EnvDelivery: testDelivery()}}, state)
		if _, err := f.store.UpdateTask(ctx, task.ID, func(cur *orchestrator.Task) error {
			now := time.Now().UTC().Truncate(time.Microsecond)
			cur.Status, cur.ContainerID, cur.StartedAt = status, id, &now
			if status.Done() {
				cur.ExitCode, cur.FinishedAt = intp(3), &now
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return task, id
	}
	_, over := leave("w-dead", orchestrator.StateExited, orchestrator.StatusFailed)
	busy, running := leave("w-alive", orchestrator.StateRunning, orchestrator.StatusRunning)
	stranger := w.leave(t, orchestrator.Spec{TaskID: "tsk_" + vault.NewID(""), Name: orchestrator.ContainerName("tsk_stranger"+vault.NewID(""), 1),
		Env: map[string]string{"TOKEN": "x"}, Sandbox: vault.SandboxSettings{EnvDelivery: testDelivery()}}, orchestrator.StateExited)
	t.Cleanup(func() {
		_ = w.backend.Remove(context.Background(), running)
		_ = w.backend.Remove(context.Background(), stranger)
	})

	// A new worker: it claims a task only once its recovery is done.
	next := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: w.backend, Worker: "w-next", Poll: 50 * time.Millisecond})
	probe := f.create(next, prof)
	stop := f.run(next)
	cur := f.await(probe.ID, "running", func(cur *orchestrator.Task, _ string) bool {
		return cur.Status == orchestrator.StatusRunning || cur.Status.Done()
	}, next)
	list, err := w.backend.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, c := range list {
		left[c.ID] = true
	}
	if left[over] {
		t.Errorf("the container of a task that is over (%s) is still there after recovery", over)
	}
	if !left[running] || !left[stranger] {
		t.Errorf("recovery removed the container of another worker's running task %s (%v) or of a task it does not know (%v)", busy.ID, !left[running], !left[stranger])
	}
	if cur.Status == orchestrator.StatusRunning {
		w.end(t, cur.ContainerID)
	}
	f.await(probe.ID, "finished", isDone, next)
	stop()
}

// TestStartOverContainerNeverStarted: a worker killed while its create
// request was in flight leaves a container the engine made after the next
// worker's recovery had queued the task again (seen under load); the next
// start of the attempt removes it and starts once more, so the task runs
// once instead of failing on the taken name. A container of the name that
// was started stays, and the start fails: that attempt may have run.
func TestStartOverContainerNeverStarted(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testStartOver(t, memWorld(t)) })
	t.Run("docker", func(t *testing.T) { testStartOver(t, dockerWorld(t)) })
	t.Run("swarm", func(t *testing.T) { testStartOver(t, swarmWorld(t)) })
}

func testStartOver(t *testing.T, w *recoveryWorld) {
	f := w.f
	prof := f.profile(w.image, w.command...)
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: w.backend, Worker: "w-next", Poll: 50 * time.Millisecond})
	leave := func(state orchestrator.State) (*orchestrator.Task, string) {
		task := f.create(o, prof)
		id := w.leave(t, orchestrator.Spec{TaskID: task.ID, Name: orchestrator.ContainerName(task.ID, 1),
			Env: map[string]string{"TOKEN": "x", "TASK_ID": task.ID}, Sandbox: vault.SandboxSettings{EnvDelivery: testDelivery()}}, state)
		t.Cleanup(func() { _ = w.backend.Remove(context.Background(), id) })
		return task, id
	}
	created, never := leave(orchestrator.StateCreated)
	ran, started := leave(orchestrator.StateExited)

	stop := f.run(o)
	defer stop()
	cur := f.await(created.ID, "running", func(cur *orchestrator.Task, _ string) bool {
		return cur.Status == orchestrator.StatusRunning || cur.Status.Done()
	}, o)
	if cur.Status == orchestrator.StatusRunning {
		w.end(t, cur.ContainerID)
	}
	done := f.await(created.ID, "finished", isDone, o)
	if done.Status != orchestrator.StatusSucceeded || done.Attempt != 1 || done.ContainerID == never {
		t.Errorf("task whose attempt's container was made, never started: %s, attempt %d, container %s (the one left: %s), error %q; want succeeded at attempt 1 in a new container",
			done.Status, done.Attempt, done.ContainerID, never, done.Error)
	}
	if w.starts != nil {
		if n := w.starts(orchestrator.ContainerName(created.ID, 1)); n != 1 {
			t.Errorf("%d starts, want 1", n)
		}
	}
	failed := f.await(ran.ID, "finished", isDone, o)
	if failed.Status != orchestrator.StatusFailed || !strings.Contains(failed.Error, "already exists") {
		t.Errorf("task whose attempt's container was started: %s, error %q; want failed: the name is taken", failed.Status, failed.Error)
	}
	list, err := w.backend.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(list, func(c orchestrator.Container) bool { return c.ID == started }) {
		t.Errorf("the started container %s of a task's attempt was removed", started)
	}
}

// TestRecoveryInitNeverGotItsEnv: a worker killed while it started a
// container (stdin delivery) leaves one the engine started after the
// worker died, whose init read the end of stdin and exited 125 with its one
// failure line (seen under load: the task failed with exit code 125
// without running). Recovery queues that attempt again, as one never
// started; a container whose command itself exited 125 is collected as
// before.
func TestRecoveryInitNeverGotItsEnv(t *testing.T) {
	w := memWorld(t)
	mem := w.backend.(*memBackend)
	f := w.f
	prof := f.profile(w.image)
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: w.backend, Worker: "w-again", Poll: 50 * time.Millisecond})
	leave := func(output string) (*orchestrator.Task, string) {
		task := f.create(o, prof)
		if c, err := f.store.ClaimTask(context.Background(), "w-again"); err != nil || c.ID != task.ID {
			t.Fatalf("claim: %v, %v", c, err)
		}
		id := mem.add(orchestrator.ContainerName(task.ID, 1), task.ID, orchestrator.StateRunning, nil)
		mem.print(id, output)
		mem.exit(id, 125)
		return task, id
	}
	never, left := leave("envvault-init: read the env block's length: EOF\n")
	ran, _ := leave("envvault-init: words of the command's own\nand more\n")

	stop := f.run(o)
	defer stop()
	cur := f.await(never.ID, "running", func(cur *orchestrator.Task, _ string) bool {
		return cur.Status == orchestrator.StatusRunning || cur.Status.Done()
	}, o)
	if cur.Status == orchestrator.StatusRunning && cur.ContainerID != left {
		w.end(t, cur.ContainerID)
	}
	done := f.await(never.ID, "finished", isDone, o)
	if done.Status != orchestrator.StatusSucceeded || done.Attempt != 1 || done.ContainerID == left {
		t.Errorf("task whose init never got its env: %s, attempt %d, container %s (left: %s), error %q; want succeeded at attempt 1 in a new container",
			done.Status, done.Attempt, done.ContainerID, left, done.Error)
	}
	if n := mem.startsOf(orchestrator.ContainerName(never.ID, 1)); n != 1 {
		t.Errorf("%d starts by recovery, want 1", n)
	}
	other := f.await(ran.ID, "finished", isDone, o)
	if other.Status != orchestrator.StatusFailed || other.Error != "exited with code 125" {
		t.Errorf("task whose command exited 125: %s, error %q; want failed, exited with code 125", other.Status, other.Error)
	}
}
