package orchestrator_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// TestPushRestart runs tasks on the real Docker Engine, and on Docker
// Swarm, with the default poll (500 ms): a task of a profile with on_secret_change restart is
// restarted with the fresh env within a second of a PATCH of a secret it
// was given, once for a burst of PATCHes, and again when the secret is
// deleted; a PATCH of a secret its profile does not receive restarts
// nothing, and a task of a keep profile only becomes stale.
func TestPushRestart(t *testing.T) {
	t.Run("docker", func(t *testing.T) {
		testPushRestart(t, func(f *fixture) orchestrator.Backend { return f.runner })
	})
	t.Run("swarm", func(t *testing.T) {
		testPushRestart(t, func(f *fixture) orchestrator.Backend { return newSwarmBackend(t, f) })
	})
}

func testPushRestart(t *testing.T, backend func(*fixture) orchestrator.Backend) {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	ctx := context.Background()
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: backend(f), Worker: "w-" + vault.NewID("")})
	f.run(o)
	// The app ends on SIGTERM, as a well-behaved one does: the restart
	// then waits for no stop timeout.
	command := []string{"/bin/sh", "-c", `echo "started len=${#PUSHED}"; trap "exit 0" TERM; sleep 600 & wait`}
	restartP, err := f.svc.CreateProfile(ctx, f.user, vault.ProfileInput{Name: "restart", Image: f.shellImage, Command: command, OnSecretChange: vault.OnSecretChangeRestart})
	if err != nil {
		t.Fatal(err)
	}
	keepP, err := f.svc.CreateProfile(ctx, f.user, vault.ProfileInput{Name: "keep", Image: f.shellImage, Command: command})
	if err != nil {
		t.Fatal(err)
	}
	otherP := f.profile(f.shellImage)
	pushed := f.secret("PUSHED", "one")
	other, err := f.svc.CreateSecret(ctx, f.user, vault.SecretInput{Name: "OTHER", Value: "other-1", Scope: vault.ScopeAgents, ProfileIDs: []string{otherP}})
	if err != nil {
		t.Fatal(err)
	}
	restartTask, keepTask := f.create(o, restartP.ID), f.create(o, keepP.ID)
	started := func(attempt, length int) func(*orchestrator.Task, string) bool {
		return func(task *orchestrator.Task, logs string) bool {
			return task.Status == orchestrator.StatusRunning && task.Attempt == attempt && strings.Contains(logs, fmt.Sprintf("started len=%d\n", length))
		}
	}
	f.await(restartTask.ID, "running", started(1, 3), o)
	f.await(keepTask.ID, "running", started(1, 3), o)

	// A secret the profile does not receive: nothing to restart. It is
	// written first, so a wrong restart for it would be seen below.
	if _, err := f.svc.UpdateSecret(ctx, f.user, other.ID, vault.SecretPatch{Value: ptrTo("other-2")}); err != nil {
		t.Fatal(err)
	}
	patched := time.Now()
	if _, err := f.svc.UpdateSecret(ctx, f.user, pushed, vault.SecretPatch{Value: ptrTo("two-two")}); err != nil {
		t.Fatal(err)
	}
	f.await(restartTask.ID, "asked to restart", func(task *orchestrator.Task, _ string) bool {
		return task.Attempt == 2 || task.RestartRequested
	}, o)
	requested := time.Since(patched)
	f.await(restartTask.ID, "restarted", started(2, 7), o)
	running := time.Since(patched)
	t.Logf("PATCH to restart requested: %v; to attempt 2 running with the new value: %v", requested, running)
	if requested > time.Second {
		t.Errorf("restart requested %v after the PATCH, want within a second", requested)
	}
	if logs := f.logs(restartTask.ID); !strings.Contains(logs, "--- envvault: restarting (attempt 2) because these secrets changed: PUSHED ---") {
		t.Errorf("logs do not mark the new attempt: %q", logs)
	}
	f.wantPushRestarts(restartTask.ID, [][]string{{"PUSHED"}})

	// A burst: one restart, whose attempt has the last value.
	for i := range 3 {
		if _, err := f.svc.UpdateSecret(ctx, f.user, pushed, vault.SecretPatch{Value: ptrTo(strings.Repeat("x", 10+i))}); err != nil {
			t.Fatal(err)
		}
	}
	third := f.await(restartTask.ID, "restarted after the burst", started(3, 12), o)
	if i := slices.IndexFunc(third.EnvSources, func(s orchestrator.EnvSource) bool { return s.Name == "PUSHED" }); i < 0 || third.EnvSources[i].Version != 5 {
		t.Errorf("attempt 3 env sources %+v, want PUSHED at version 5", third.EnvSources)
	}
	f.wantPushRestarts(restartTask.ID, [][]string{{"PUSHED"}, {"PUSHED"}})

	// Deleted: restarted without it.
	if err := f.svc.DeleteSecret(ctx, f.user, pushed); err != nil {
		t.Fatal(err)
	}
	f.await(restartTask.ID, "restarted after the delete", started(4, 0), o)

	v, err := o.Task(ctx, f.user, keepTask.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Attempt != 1 || v.Status != orchestrator.StatusRunning || !slices.Equal(v.Stale, []string{"PUSHED"}) {
		t.Errorf("the keep task: attempt %d, %s, stale %v; want attempt 1 running, PUSHED stale", v.Attempt, v.Status, v.Stale)
	}
	// Stopped, so that the backend removes what it made for them.
	for _, id := range []string{restartTask.ID, keepTask.ID} {
		if _, err := o.StopTask(ctx, f.user, id); err != nil {
			t.Fatal(err)
		}
		f.await(id, "stopped", isDone, o)
	}
}

// wantPushRestarts checks the task's task.push_restart events, oldest
// first, by the names each gives.
func (f *fixture) wantPushRestarts(taskID string, want [][]string) {
	f.t.Helper()
	page, err := f.svc.AuditEvents(context.Background(), f.user, vault.AuditOptions{Action: vault.ActionTaskPushRestart, TargetID: taskID})
	if err != nil {
		f.t.Fatal(err)
	}
	var got [][]string
	for i := len(page.Items) - 1; i >= 0; i-- {
		var names []string
		list, _ := page.Items[i].Details["names"].([]any)
		for _, n := range list {
			s, _ := n.(string)
			names = append(names, s)
		}
		got = append(got, names)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Errorf("push restarts of %s: %v, want %v", taskID, got, want)
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestSecretKeysOfProfile: the orchestrator's SecretKeys sees its own
// baseline; another user's profile is not found.
func TestSecretKeysOfProfile(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	f.baseline = orchestrator.Baseline{Env: map[string]string{"REGION": "eu"}}
	o := f.orch("w", nil)
	ctx := context.Background()
	p, err := f.svc.CreateProfile(ctx, f.user, vault.ProfileInput{Name: "p", Image: "img",
		RequiredSecrets: []vault.RequiredSecret{{Name: "REGION"}, {Name: "MISSING", Description: "give it"}}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := o.SecretKeys(ctx, f.user, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []orchestrator.SecretKey{
		{Name: "MISSING", Source: orchestrator.KeySourceMissing, Required: true, Description: "give it"},
		{Name: "REGION", HasValue: true, Source: orchestrator.KeySourceBaseline, Required: true},
	}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("SecretKeys = %v, want %v", keys, want)
	}
	bob, _, err := f.svc.CreateUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.SecretKeys(ctx, bob.ID, p.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("another user's profile: %v", err)
	}
}
