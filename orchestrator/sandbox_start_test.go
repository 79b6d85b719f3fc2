package orchestrator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// TestStartRechecksSandbox: the sandbox policy is checked again when a
// task starts. A profile saved under a policy that allowed its memory, run
// by a worker whose operator lowered the maximum since, fails naming the
// field, and no container is made (not one with the defaults instead).
func TestStartRechecksSandbox(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	ctx := context.Background()
	p, err := f.svc.CreateProfile(ctx, f.user, vault.ProfileInput{Name: "big", Image: f.envImage, Sandbox: vault.Sandbox{MemoryMB: 512}})
	if err != nil {
		t.Fatalf("the profile under the policy it was saved with: %v", err)
	}
	task := f.create(f.orch("w-saved", nil), p.ID) // queued, not run

	lowered := vault.NewService(f.store, testvault.MustKeyring(t), vault.Options{
		Sandbox: vault.SandboxPolicy{DefaultMemoryMB: 128, MaxMemoryMB: 256},
	})
	if _, err := lowered.SandboxSettings(p); vault.ErrorCode(err) != vault.EINVALID {
		t.Fatalf("the lowered policy takes the profile: %v", err)
	}
	o := orchestrator.New(orchestrator.Config{Vault: lowered, Store: f.store, Runner: f.runner, Worker: "w-lowered", Poll: 50 * time.Millisecond})
	f.run(o)

	done := f.await(task.ID, "finished", isDone, o)
	if done.Status != orchestrator.StatusFailed || !strings.Contains(done.Error, "not started: the profile's sandbox.memory_mb") ||
		done.ContainerID != "" || done.StartedAt != nil {
		t.Errorf("task beyond the lowered policy: status %s, error %q, container %q", done.Status, done.Error, done.ContainerID)
	}
	list, err := f.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runner.LabelUser+"="+f.user))})
	if err != nil || len(list) != 0 {
		t.Errorf("containers were created: %v, %v", list, err)
	}
}
