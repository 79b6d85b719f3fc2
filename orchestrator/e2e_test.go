package orchestrator_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// removeContainersOf removes every container labelled with the user.
func removeContainersOf(t *testing.T, cli client.APIClient, userID string) {
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runner.LabelUser+"="+userID))})
	if err != nil {
		t.Errorf("list containers of %s: %v", userID, err)
		return
	}
	for _, c := range list {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove container %s: %v", c.ID, err)
		}
	}
}

// exec runs argv in a running container and waits for it to succeed.
func (f *fixture) exec(id string, argv ...string) {
	f.t.Helper()
	ctx := context.Background()
	created, err := f.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		f.t.Fatalf("exec %v: %v", argv, err)
	}
	att, err := f.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		f.t.Fatalf("exec %v: %v", argv, err)
	}
	defer att.Close()
	// The attached stream ends when the process does. When that makes
	// the container exit, the exec may be killed with it (137).
	_, _ = att.Reader.WriteTo(discard{})
	res, err := f.cli.ContainerExecInspect(ctx, created.ID)
	if err != nil || (!res.Running && res.ExitCode != 0 && res.ExitCode != 137) {
		f.t.Fatalf("exec %v: %+v, %v", argv, res, err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// awaitGone waits until the container is removed.
func (f *fixture) awaitGone(id string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	resC, errC := f.cli.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-resC:
	case err := <-errC:
		if !cerrdefs.IsNotFound(err) {
			f.t.Fatalf("container %s not removed: %v", id, err)
		}
	}
}

func (f *fixture) inspect(id string) *runner.Container {
	f.t.Helper()
	c, err := f.runner.Inspect(context.Background(), id)
	if err != nil {
		f.t.Fatalf("inspect %s: %v", id, err)
	}
	return c
}

func isRunning(task *orchestrator.Task, _ string) bool {
	return task.Status == orchestrator.StatusRunning
}

func isDone(task *orchestrator.Task, _ string) bool { return task.Status.Done() }

// TestRecovery kills the server while tasks run — a worker whose context
// ends, leaving its containers running — and starts a fresh orchestrator
// on the same database with the same worker id, as a restarted envvault.
func TestRecovery(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		f := newFixture(t, b.open(t), true)
		ctx := context.Background()

		t.Run("a running task is attached again and finishes", func(t *testing.T) {
			f.t = t
			worker := "w-" + vault.NewID("")
			pid := f.profile(f.envImage, testimage.EnvProbe, "print", "before", "--", "echo", "TOKEN", "--",
				"wait-for-file", "/tmp/go", "--", "echo", "TOKEN", "--", "print", "after", "--", "exit", "7")
			sid := f.secret("TOKEN", "token-before-restart")
			o1 := f.orch(worker, nil)
			stop1 := f.run(o1)
			task := f.create(o1, pid)
			running := f.await(task.ID, "running with its first lines", func(task *orchestrator.Task, logs string) bool {
				return isRunning(task, logs) && logs == "before\n***\n"
			}, o1)
			stop1()
			if c := f.inspect(running.ContainerID); !c.Running {
				t.Fatalf("the container stopped with the server: %+v", c)
			}
			if got := f.task(task.ID); got.Status != orchestrator.StatusRunning {
				t.Fatalf("task after the server stopped: %+v", got)
			}
			chunks, err := f.store.TaskLogs(ctx, task.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			lastSeq := chunks[len(chunks)-1].Seq
			// Rotated while envvault is down: the container still holds the
			// old value, which its logs must keep masking.
			rotated := "token-after-restart"
			if _, err := f.svc.UpdateSecret(ctx, f.user, sid, vault.SecretPatch{Value: &rotated}); err != nil {
				t.Fatal(err)
			}

			o2 := f.orch(worker, b.open(t))
			f.run(o2)
			// The new worker clears the logs and reads them again from the
			// container, which is still waiting: only its reading writes.
			f.await(task.ID, "reattached", func(*orchestrator.Task, string) bool {
				more, err := f.store.TaskLogs(ctx, task.ID, lastSeq)
				if err != nil {
					t.Fatal(err)
				}
				return len(more) > 0
			}, o2)
			f.exec(running.ContainerID, testimage.EnvProbe, "touch", "/tmp/go")
			done := f.await(task.ID, "finished", isDone, o2)
			if done.Status != orchestrator.StatusFailed || done.ExitCode == nil || *done.ExitCode != 7 || done.Error != "exited with code 7" ||
				done.Attempt != 1 || done.ContainerID != running.ContainerID {
				t.Errorf("finished: %+v", done)
			}
			if logs := f.logs(task.ID); logs != "before\n***\n***\nafter\n" {
				t.Errorf("logs: %q", logs)
			}
			f.awaitGone(running.ContainerID)
		})

		t.Run("a task that exited while envvault was down is collected", func(t *testing.T) {
			f.t = t
			worker := "w-" + vault.NewID("")
			pid := f.profile(f.envImage, testimage.EnvProbe, "print", "x", "--", "wait-for-file", "/tmp/go", "--", "print", "y", "--", "exit", "5")
			o1 := f.orch(worker, nil)
			stop1 := f.run(o1)
			task := f.create(o1, pid)
			running := f.await(task.ID, "running", func(task *orchestrator.Task, logs string) bool { return isRunning(task, logs) && logs == "x\n" }, o1)
			stop1()
			f.exec(running.ContainerID, testimage.EnvProbe, "touch", "/tmp/go")
			if code, err := f.runner.Wait(ctx, running.ContainerID); err != nil || code != 5 {
				t.Fatalf("container exit: %d, %v", code, err)
			}
			o2 := f.orch(worker, b.open(t))
			f.run(o2)
			done := f.await(task.ID, "finished", isDone, o2)
			if done.Status != orchestrator.StatusFailed || done.ExitCode == nil || *done.ExitCode != 5 {
				t.Errorf("finished: %+v", done)
			}
			if logs := f.logs(task.ID); logs != "x\ny\n" {
				t.Errorf("logs: %q", logs)
			}
			f.awaitGone(running.ContainerID)
		})

		t.Run("a task whose container was removed meanwhile fails with the reason", func(t *testing.T) {
			f.t = t
			worker := "w-" + vault.NewID("")
			pid := f.profile(f.envImage, testimage.EnvProbe, "print", "up", "--", "sleep", "forever")
			o1 := f.orch(worker, nil)
			stop1 := f.run(o1)
			task := f.create(o1, pid)
			running := f.await(task.ID, "running", func(task *orchestrator.Task, logs string) bool { return isRunning(task, logs) && logs == "up\n" }, o1)
			stop1()
			if err := f.cli.ContainerRemove(ctx, running.ContainerID, container.RemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			o2 := f.orch(worker, b.open(t))
			f.run(o2)
			done := f.await(task.ID, "finished", isDone, o2)
			if done.Status != orchestrator.StatusFailed || done.Error != "its container was gone when envvault restarted" || done.ExitCode != nil {
				t.Errorf("finished: %+v", done)
			}
		})

		t.Run("a task claimed but never started runs once", func(t *testing.T) {
			f.t = t
			worker := "w-" + vault.NewID("")
			pid := f.profile(f.envImage, testimage.EnvProbe, "print", "ran")
			o := f.orch(worker, nil)
			// Claimed by this worker, which died before creating a
			// container; then one claimed whose container was created but
			// never started (made here, as the runner would have).
			noContainer := f.create(o, pid)
			if c, err := f.store.ClaimTask(ctx, worker); err != nil || c.ID != noContainer.ID {
				t.Fatalf("claim: %v, %v", c, err)
			}
			created := f.create(o, pid)
			if c, err := f.store.ClaimTask(ctx, worker); err != nil || c.ID != created.ID {
				t.Fatalf("claim: %v, %v", c, err)
			}
			leftover, err := f.cli.ContainerCreate(ctx, &container.Config{
				Image: f.envImage, Cmd: []string{testimage.EnvProbe, "print", "must not run"},
				Labels: map[string]string{runner.LabelManaged: "true", runner.LabelTask: created.ID, runner.LabelUser: f.user, runner.LabelProfile: pid},
			}, nil, nil, nil, orchestrator.ContainerName(created.ID, 1))
			if err != nil {
				t.Fatal(err)
			}
			f.run(o)
			for _, id := range []string{noContainer.ID, created.ID} {
				done := f.await(id, "finished", isDone, o)
				if done.Status != orchestrator.StatusSucceeded || done.Attempt != 1 {
					t.Errorf("task %s: %+v", id, done)
				}
				if logs := f.logs(id); logs != "ran\n" {
					t.Errorf("task %s: logs %q", id, logs)
				}
			}
			f.awaitGone(leftover.ID)
		})
	})
}

// TestWorkersShareTheQueue: an API-only orchestrator (no runner) and two
// workers, each on its own handle of one database, as three envvault
// processes. Every task runs once; a stop asked through the API process
// reaches the worker running the task.
func TestWorkersShareTheQueue(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		f := newFixture(t, b.open(t), true)
		api := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Worker: "api"})
		n1, n2 := "w1-"+vault.NewID(""), "w2-"+vault.NewID("")
		w1, w2 := f.orch(n1, b.open(t)), f.orch(n2, b.open(t))
		f.run(w1)
		f.run(w2)
		pid := f.profile(f.envImage, testimage.EnvProbe, "echo", "TASK_ID")
		var ids []string
		for range 6 {
			ids = append(ids, f.create(api, pid).ID)
		}
		for _, id := range ids {
			done := f.await(id, "finished", isDone, w1, w2)
			if done.Status != orchestrator.StatusSucceeded || done.Attempt != 1 || (done.Worker != n1 && done.Worker != n2) {
				t.Errorf("task %s: %+v", id, done)
			}
			if logs := f.logs(id); logs != id+"\n" {
				t.Errorf("task %s ran other than once: logs %q", id, logs)
			}
		}

		sleeper := f.create(api, f.profile(f.envImage, testimage.EnvProbe, "print", "up", "--", "sleep", "forever"))
		f.await(sleeper.ID, "running", func(task *orchestrator.Task, logs string) bool { return isRunning(task, logs) && logs == "up\n" }, w1, w2)
		if _, err := api.StopTask(context.Background(), f.user, sleeper.ID); err != nil {
			t.Fatal(err)
		}
		done := f.await(sleeper.ID, "stopped", isDone, w1, w2)
		if done.Status != orchestrator.StatusStopped || done.ExitCode == nil || *done.ExitCode != 143 {
			t.Errorf("stopped: %+v", done)
		}
	})
}

// TestStartRefusals: a deleted profile, or a secret that cannot be
// decrypted, fails the task before any container exists, naming the
// secret by its id only.
func TestStartRefusals(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	ctx := context.Background()
	o := f.orch("w-"+vault.NewID(""), nil)

	gone := f.create(o, f.profile(f.envImage))
	if err := f.svc.DeleteProfile(ctx, f.user, gone.ProfileID); err != nil {
		t.Fatal(err)
	}
	pid := f.profile(f.envImage)
	f.secret("GOOD", "good-value")
	// Sealed under another master key than the one the orchestrator's
	// vault holds: it cannot be opened.
	otherKey, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	otherKeys, err := seal.NewKeyring(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := vault.NewService(f.store, otherKeys, vault.Options{}).CreateSecret(ctx, f.user, vault.SecretInput{Name: "BAD", Value: "CANARY-undecryptable"})
	if err != nil {
		t.Fatal(err)
	}
	undecryptable := f.create(o, pid)
	f.run(o)

	if done := f.await(gone.ID, "finished", isDone, o); done.Status != orchestrator.StatusFailed || done.Error != "the task's profile was deleted" {
		t.Errorf("task on a deleted profile: %+v", done)
	}
	done := f.await(undecryptable.ID, "finished", isDone, o)
	if done.Status != orchestrator.StatusFailed || !strings.Contains(done.Error, bad.ID) || !strings.Contains(done.Error, "cannot be decrypted") ||
		strings.Contains(done.Error, "CANARY") || done.ContainerID != "" || len(done.EnvSources) != 0 {
		t.Errorf("task with an undecryptable secret: %+v", done)
	}
	list, err := f.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runner.LabelUser+"="+f.user))})
	if err != nil || len(list) != 0 {
		t.Errorf("containers were created: %v, %v", list, err)
	}
}

// TestChattyTaskLogs: a program printing line by line (Docker delivers a
// line at a time) is stored whole and in order, in batches rather than a
// row per line.
func TestChattyTaskLogs(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	o := f.orch("w-"+vault.NewID(""), nil)
	f.run(o)
	const n = 20000
	task := f.create(o, f.profile(f.envImage, testimage.EnvProbe, "lines", strconv.Itoa(n)))
	if done := f.await(task.ID, "finished", isDone, o); done.Status != orchestrator.StatusSucceeded {
		t.Fatalf("finished: %+v", done)
	}
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if logs := f.logs(task.ID); logs != want.String() {
		t.Errorf("logs: %d bytes, want %d", len(logs), want.Len())
	}
	chunks, err := f.store.TaskLogs(context.Background(), task.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) > n/100 {
		t.Errorf("%d lines stored in %d chunks", n, len(chunks))
	}
}
