package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// releases returns the task.release events of a task, in order.
func (f *fixture) releases(taskID string) []*vault.AuditEvent {
	f.t.Helper()
	page, err := f.svc.AuditEvents(context.Background(), f.user, vault.AuditOptions{
		Action: vault.ActionTaskRelease, TargetID: taskID, Limit: vault.MaxPageLimit})
	if err != nil {
		f.t.Fatal(err)
	}
	out := page.Items
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// TestTaskReleaseAudited runs tasks on the real engine and checks that
// every container start records, once, which secrets it released (ids
// and versions; never a value), and that reattaching after a restart of
// envvault records nothing more: the container got nothing new.
func TestTaskReleaseAudited(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		f := newFixture(t, b.open(t), true)
		ctx := context.Background()
		const value = "release-canary-value-4d2f"
		sid := f.secret("API_KEY", value)
		worker := "w-" + vault.NewID("")
		pid := f.profile(f.envImage, testimage.EnvProbe, "print", "started", "--", "wait-for-file", "/tmp/go", "--", "exit", "0")

		o1 := f.orch(worker, nil)
		stop1 := f.run(o1)
		task := f.create(o1, pid)
		running := f.await(task.ID, "running", func(task *orchestrator.Task, logs string) bool {
			return isRunning(task, logs) && logs == "started\n"
		}, o1)
		// envvault restarts: the new worker attaches to the container.
		stop1()
		o2 := f.orch(worker, b.open(t))
		f.run(o2)
		f.exec(running.ContainerID, testimage.EnvProbe, "touch", "/tmp/go")
		if done := f.await(task.ID, "finished", isDone, o2); done.Status != orchestrator.StatusSucceeded {
			t.Fatalf("first attempt: %+v", done)
		}

		// A new value, then a restart: a second start, a second release.
		rotated := "release-canary-rotated-9e1a"
		if _, err := f.svc.UpdateSecret(ctx, f.user, sid, vault.SecretPatch{Value: &rotated}); err != nil {
			t.Fatal(err)
		}
		if _, err := o2.RestartTask(ctx, f.user, task.ID); err != nil {
			t.Fatal(err)
		}
		second := f.await(task.ID, "running again", func(task *orchestrator.Task, logs string) bool {
			return task.Attempt == 2 && isRunning(task, logs)
		}, o2)
		f.exec(second.ContainerID, testimage.EnvProbe, "touch", "/tmp/go")
		if done := f.await(task.ID, "finished again", isDone, o2); done.Status != orchestrator.StatusSucceeded {
			t.Fatalf("second attempt: %+v", done)
		}

		events := f.releases(task.ID)
		if len(events) != 2 {
			t.Fatalf("%d task.release events for two starts, want 2", len(events))
		}
		for i, e := range events {
			attempt, version := i+1, i+1
			if e.UserID != f.user || e.TokenID != "" || e.TargetType != vault.TargetTask {
				t.Errorf("release %d: %+v", attempt, e)
			}
			d, _ := json.Marshal(e.Details)
			want := fmt.Sprintf(`{"attempt":%d,"profile_id":%q,"secrets":"%s@%d"}`, attempt, pid, sid, version)
			if string(d) != want {
				t.Errorf("release %d details:\n got %s\nwant %s", attempt, d, want)
			}
			if strings.Contains(string(d), "canary") {
				t.Errorf("release %d holds a value", attempt)
			}
		}
		rep, err := vault.VerifyAudit(ctx, f.store)
		if err != nil || rep.Break != nil {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	})
}
