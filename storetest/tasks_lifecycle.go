package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

func testTaskOutlivesProfile(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")
	f.mustAppend(task.ID, "kept")
	if err := f.svc.DeleteProfile(f.ctx, alice, p.ID); err != nil {
		t.Fatalf("delete profile: %v", err)
	}
	sameTask(t, f.mustTask(alice, task.ID), task)
	if list := f.mustList(alice, vault.ListFilter{Limit: 10}); len(list) != 1 || list[0].ID != task.ID {
		t.Errorf("after deleting its profile, list %v, want [%s]", taskIDs(list), task.ID)
	}
	if got := chunkData(f.mustLogs(task.ID, 0)); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after deleting its profile, logs %q", got)
	}
	if got := f.mustClaim("w"); got.ID != task.ID || got.ProfileID != p.ID {
		t.Errorf("claimed %s of profile %s, want %s of %s", got.ID, got.ProfileID, task.ID, p.ID)
	}
	f.mustUpdate(task.ID, func(x *orchestrator.Task) {
		x.Status, x.Error = orchestrator.StatusFailed, "the task's profile was deleted"
	})
	// No new task on the deleted profile.
	wantErr(t, f.store.CreateTask(f.ctx, f.newTask(alice, p.ID, "x")), vault.ENOTFOUND, "")
}

func testTaskDeletingUserDeletesTasks(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p, bp := f.mustProfile(alice, "p"), f.mustProfile(bob, "p")
	var gone, kept []*orchestrator.Task
	for i := range 3 {
		gone = append(gone, f.mustQueue(alice, p.ID, fmt.Sprint(i)))
		kept = append(kept, f.mustQueue(bob, bp.ID, fmt.Sprint(i)))
	}
	f.mustClaim("w") // alice's first
	f.mustClaim("w") // bob's first
	for _, task := range append(slices.Clone(gone), kept...) {
		f.mustAppend(task.ID, "log of "+task.ID)
	}
	before := map[string]*orchestrator.Task{}
	for _, task := range kept {
		before[task.ID] = f.mustTask(bob, task.ID)
	}

	if err := f.deleteUser(f.ctx, alice); err != nil {
		t.Fatalf("delete user: %v", err)
	}
	for _, task := range gone {
		f.wantNoTask(alice, task.ID)
		if chunks := f.mustLogs(task.ID, 0); len(chunks) != 0 {
			t.Errorf("deleted user's task %s keeps logs %q", task.ID, chunkData(chunks))
		}
		_, err := f.store.UpdateTask(f.ctx, task.ID, func(*orchestrator.Task) error { return nil })
		wantErr(t, err, vault.ENOTFOUND, "")
		wantErr(t, f.store.AppendTaskLog(f.ctx, task.ID, []byte("x")), vault.ENOTFOUND, "")
	}
	if active := f.mustActive(""); len(active) != 1 || active[0].ID != kept[0].ID {
		t.Errorf("active after deleting alice: %v, want [%s]", taskIDs(active), kept[0].ID)
	}
	for _, task := range kept {
		sameTask(t, f.mustTask(bob, task.ID), before[task.ID])
		if got := chunkData(f.mustLogs(task.ID, 0)); !slices.Equal(got, []string{"log of " + task.ID}) {
			t.Errorf("bob's task %s logs %q", task.ID, got)
		}
	}
	// Alice's queued tasks are gone from the queue; bob's are next.
	if got := f.mustClaim("w"); got.ID != kept[1].ID {
		t.Errorf("claimed %s, want bob's %s", got.ID, kept[1].ID)
	}
}
