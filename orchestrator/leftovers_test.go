package orchestrator_test

import (
	"context"
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
