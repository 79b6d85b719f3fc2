package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// taskTests are the suite of orchestrator.Store.
var taskTests = []test{
	{name: "CreateAndRead", fn: testTaskCreateAndRead},
	{name: "CreateChecksProfile", fn: testTaskCreateChecksProfile},
	{name: "ListNewestFirst", fn: testTaskListNewestFirst},
	{name: "ClaimOrder", fn: testTaskClaimOrder},
	{name: "ClaimSkipsUsers", fn: testTaskClaimSkipsUsers},
	{name: "ConcurrentClaims", fn: testTaskConcurrentClaims},
	{name: "UpdateRoundTrip", fn: testTaskUpdateRoundTrip},
	{name: "FailedUpdateChangesNothing", fn: testTaskFailedUpdateChangesNothing},
	{name: "ConcurrentUpdates", fn: testTaskConcurrentUpdates},
	{name: "ActiveTasks", fn: testTaskActiveTasks},
	{name: "Logs", fn: testTaskLogs},
	{name: "ConcurrentLogAppends", fn: testTaskConcurrentLogAppends},
	{name: "TaskOutlivesProfile", fn: testTaskOutlivesProfile},
	{name: "DeletingUserDeletesTasks", fn: testTaskDeletingUserDeletesTasks},
	{name: "LiveCounts", fn: testTaskLiveCounts}, // tasks_counts.go
	{name: "QueueLimit", fn: testTaskQueueLimit}, // tasks_queue.go
}

// stamp is the fixture's clock as the orchestrator hands times to a store:
// UTC, whole microseconds.
func (f *fixture) stamp() time.Time { return f.now().UTC().Truncate(time.Microsecond) }

// newTask returns a queued task, not stored, created at the fixture's
// clock.
func (f *fixture) newTask(userID, profileID, prompt string) *orchestrator.Task {
	now := f.stamp()
	return &orchestrator.Task{
		ID: vault.NewID(vault.PrefixTask), UserID: userID, ProfileID: profileID, Prompt: prompt,
		Status: orchestrator.StatusQueued, Attempt: 1, CreatedAt: now, UpdatedAt: now,
	}
}

func (f *fixture) mustCreateTask(task *orchestrator.Task) *orchestrator.Task {
	f.t.Helper()
	if err := f.store.CreateTask(f.ctx, task); err != nil {
		f.t.Fatalf("create task %s: %v", task.ID, err)
	}
	return task
}

// mustQueue creates and returns a queued task on the profile.
func (f *fixture) mustQueue(userID, profileID, prompt string) *orchestrator.Task {
	f.t.Helper()
	return f.mustCreateTask(f.newTask(userID, profileID, prompt))
}

func (f *fixture) mustTask(userID, id string) *orchestrator.Task {
	f.t.Helper()
	task, err := f.store.Task(f.ctx, userID, id)
	if err != nil {
		f.t.Fatalf("read task %s: %v", id, err)
	}
	return task
}

func (f *fixture) mustUpdate(id string, fn func(*orchestrator.Task)) *orchestrator.Task {
	f.t.Helper()
	task, err := f.store.UpdateTask(f.ctx, id, func(t *orchestrator.Task) error { fn(t); return nil })
	if err != nil {
		f.t.Fatalf("update task %s: %v", id, err)
	}
	return task
}

func (f *fixture) mustClaim(worker string) *orchestrator.Task {
	f.t.Helper()
	task, err := f.store.ClaimTask(f.ctx, worker)
	if err != nil {
		f.t.Fatalf("claim a task for %s: %v", worker, err)
	}
	return task
}

func (f *fixture) mustList(userID string, filter vault.ListFilter) []*orchestrator.Task {
	f.t.Helper()
	list, err := f.store.Tasks(f.ctx, userID, filter)
	if err != nil {
		f.t.Fatalf("list tasks of %s: %v", userID, err)
	}
	return list
}

func (f *fixture) mustActive(worker string) []*orchestrator.Task {
	f.t.Helper()
	list, err := f.store.ActiveTasks(f.ctx, worker)
	if err != nil {
		f.t.Fatalf("active tasks of %q: %v", worker, err)
	}
	return list
}

func (f *fixture) mustAppend(taskID string, data string) {
	f.t.Helper()
	if err := f.store.AppendTaskLog(f.ctx, taskID, []byte(data)); err != nil {
		f.t.Fatalf("append log of task %s: %v", taskID, err)
	}
}

func (f *fixture) mustLogs(taskID string, after int64) []orchestrator.LogChunk {
	f.t.Helper()
	chunks, err := f.store.TaskLogs(f.ctx, taskID, after)
	if err != nil {
		f.t.Fatalf("read logs of task %s after %d: %v", taskID, after, err)
	}
	return chunks
}

// wantNoTask checks that userID sees no task of this id.
func (f *fixture) wantNoTask(userID, id string) {
	f.t.Helper()
	_, err := f.store.Task(f.ctx, userID, id)
	wantErr(f.t, err, vault.ENOTFOUND, "")
}

func taskIDs(list []*orchestrator.Task) []string {
	return ids(list, func(t *orchestrator.Task) string { return t.ID })
}

// newestFirst sorts tasks as Tasks lists them.
func newestFirst(list []*orchestrator.Task) []*orchestrator.Task {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b *orchestrator.Task) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return list
}

// sameTask checks that got is want as stored, field by field. A nil and an
// empty EnvSources are the same.
func sameTask(t *testing.T, got, want *orchestrator.Task) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("sameTask: got %v, want %v", got, want)
	}
	type row struct {
		ID, UserID, ProfileID, Prompt, Status, ContainerID, Error, Worker, ExitCode string
		Attempt                                                                     int
		StopRequested, RestartRequested                                             bool
	}
	code := func(c *int) string {
		if c == nil {
			return "<nil>"
		}
		return fmt.Sprint(*c)
	}
	mk := func(x *orchestrator.Task) row {
		return row{x.ID, x.UserID, x.ProfileID, x.Prompt, string(x.Status), x.ContainerID, x.Error, x.Worker,
			code(x.ExitCode), x.Attempt, x.StopRequested, x.RestartRequested}
	}
	if g, w := mk(got), mk(want); g != w {
		t.Errorf("task %s:\n got %+v\nwant %+v", want.ID, g, w)
	}
	if !slices.Equal(got.EnvSources, want.EnvSources) {
		t.Errorf("task %s: env sources\n got %+v\nwant %+v", want.ID, got.EnvSources, want.EnvSources)
	}
	wantTime(t, "task "+want.ID+" created_at", got.CreatedAt, want.CreatedAt)
	wantTime(t, "task "+want.ID+" updated_at", got.UpdatedAt, want.UpdatedAt)
	for _, tm := range []struct {
		name      string
		got, want *time.Time
	}{{"started_at", got.StartedAt, want.StartedAt}, {"finished_at", got.FinishedAt, want.FinishedAt}} {
		switch {
		case tm.got == nil && tm.want == nil:
		case tm.got == nil || tm.want == nil:
			t.Errorf("task %s %s: got %v, want %v", want.ID, tm.name, tm.got, tm.want)
		default:
			wantTime(t, "task "+want.ID+" "+tm.name, *tm.got, *tm.want)
		}
	}
}

func testTaskCreateAndRead(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p := f.mustProfile(alice, "p")
	// Text the database must keep byte for byte.
	task := f.mustQueue(alice, p.ID, "Fix the bug in main.go\n\t– and “quote” it: ✓ 🚀 'O''Reilly'; DROP TABLE tasks;")
	sameTask(t, f.mustTask(alice, task.ID), task)

	f.wantNoTask(bob, task.ID)             // another user's
	f.wantNoTask(alice, "tsk_nonexistent") // never existed
	if list := f.mustList(bob, vault.ListFilter{Limit: 10}); len(list) != 0 {
		t.Errorf("bob lists alice's tasks: %v", taskIDs(list))
	}
	if list := f.mustList(alice, vault.ListFilter{Limit: 10}); len(list) != 1 {
		t.Fatalf("alice lists %v, want her one task", taskIDs(list))
	} else {
		sameTask(t, list[0], task)
	}

	// Every field CreateTask is given is stored, not only those of a
	// fresh task.
	full := f.newTask(alice, p.ID, "")
	code := 0
	started, finished := f.stamp(), f.stamp()
	full.Status, full.ExitCode, full.ContainerID, full.Error = orchestrator.StatusFailed, &code, "c0ffee", "why"
	full.EnvSources = []orchestrator.EnvSource{{Name: "A", Source: orchestrator.SourceBaseline}}
	full.Worker, full.Attempt, full.StopRequested, full.RestartRequested = "w", 3, true, true
	full.StartedAt, full.FinishedAt, full.UpdatedAt = &started, &finished, f.stamp()
	f.mustCreateTask(full)
	sameTask(t, f.mustTask(alice, full.ID), full)

	dup := f.newTask(alice, p.ID, "again")
	dup.ID = task.ID
	wantErr(t, f.store.CreateTask(f.ctx, dup), vault.ECONFLICT, "")
	sameTask(t, f.mustTask(alice, task.ID), task)
}

func testTaskCreateChecksProfile(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p := f.mustProfile(alice, "p")
	bobs := f.mustProfile(bob, "p")
	for _, tc := range []struct {
		name            string
		userID, profile string
	}{
		{"another user's profile", alice, bobs.ID},
		{"the profile's user is another", bob, p.ID},
		{"unknown profile", alice, "prf_nonexistent"},
		{"unknown user", "usr_nonexistent", p.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			task := f.newTask(tc.userID, tc.profile, "x")
			wantErr(t, f.store.CreateTask(f.ctx, task), vault.ENOTFOUND, "")
			for _, u := range []string{alice, bob, tc.userID} {
				f.wantNoTask(u, task.ID)
			}
		})
	}
	for _, u := range []string{alice, bob} {
		if list := f.mustList(u, vault.ListFilter{Limit: 10}); len(list) != 0 {
			t.Errorf("refused creates left tasks: %v", taskIDs(list))
		}
	}
	if _, err := f.store.ClaimTask(f.ctx, "w"); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("refused creates left a task to claim: %v", err)
	}
}

func testTaskListNewestFirst(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p := f.mustProfile(alice, "p")
	bp := f.mustProfile(bob, "p")
	var tasks []*orchestrator.Task
	// Created out of order, several at one instant (told apart by id), and
	// one before 1970, whose cursor key is negative.
	at := f.stamp()
	times := []time.Time{at, at.Add(-time.Hour), at, at.Add(time.Microsecond), at.Add(-time.Hour), at,
		at.Add(24 * time.Hour), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), at.Add(time.Second), at}
	for i, created := range times {
		task := f.newTask(alice, p.ID, fmt.Sprint(i))
		task.CreatedAt, task.UpdatedAt = created, created
		tasks = append(tasks, f.mustCreateTask(task))
	}
	for range 3 {
		task := f.newTask(bob, bp.ID, "bob's")
		task.CreatedAt = at // interleaved with alice's
		f.mustCreateTask(task)
	}
	want := newestFirst(tasks)

	for _, limit := range []int{1, 2, 3, 4, len(tasks) - 1, len(tasks), len(tasks) + 1, 100} {
		t.Run(fmt.Sprintf("store by %d", limit), func(t *testing.T) { f.sub(t).walkTasks(alice, limit, want) })
	}

	t.Run("through the orchestrator", func(t *testing.T) {
		f := f.sub(t)
		o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Worker: "w"})
		for _, limit := range []int{1, 3, len(tasks)} {
			got := walk(t, limit, func(cursor string) (vault.Page[*orchestrator.TaskView], error) {
				return o.Tasks(f.ctx, alice, vault.ListOptions{Cursor: cursor, Limit: limit})
			})
			gotIDs := ids(got, func(v *orchestrator.TaskView) string { return v.ID })
			if w := taskIDs(want); !slices.Equal(gotIDs, w) {
				t.Errorf("by %d: walked\n got %v\nwant %v", limit, gotIDs, w)
			}
		}
	})

	t.Run("cursors", func(t *testing.T) {
		f := f.sub(t)
		// A cursor need not name an existing task.
		after := vault.Cursor{Key: fmt.Sprintf("%020d", at.UnixMicro()), ID: "tsk_~"}
		got := f.mustList(alice, vault.ListFilter{After: &after, Limit: 100})
		var wantAfter []*orchestrator.Task
		for _, task := range want {
			if task.CreatedAt.Before(at) || task.CreatedAt.Equal(at) {
				wantAfter = append(wantAfter, task)
			}
		}
		if g, w := taskIDs(got), taskIDs(wantAfter); !slices.Equal(g, w) {
			t.Errorf("after (%s, tsk_~):\n got %v\nwant %v", after.Key, g, w)
		}
		if list := f.mustList(alice, vault.ListFilter{Limit: 0}); len(list) != 0 {
			t.Errorf("limit 0 listed %d tasks", len(list))
		}
		for _, key := range []string{"", "yesterday", "12.5"} {
			_, err := f.store.Tasks(f.ctx, alice, vault.ListFilter{After: &vault.Cursor{Key: key, ID: tasks[0].ID}, Limit: 1})
			wantErr(t, err, vault.EINVALID, "cursor")
		}
	})
}

// walkTasks walks the user's tasks through the store, limit a page, and
// checks they are want, in order.
func (f *fixture) walkTasks(userID string, limit int, want []*orchestrator.Task) {
	t := f.t
	t.Helper()
	var got []*orchestrator.Task
	filter := vault.ListFilter{Limit: limit, Query: "ignored"}
	for range len(want) + 2 {
		page := f.mustList(userID, filter)
		if len(page) > limit {
			t.Fatalf("a page of limit %d holds %d tasks", limit, len(page))
		}
		got = append(got, page...)
		if len(page) < limit {
			break
		}
		cursor := orchestrator.TaskCursor(page[len(page)-1])
		filter.After = &cursor
	}
	if g, w := taskIDs(got), taskIDs(want); !slices.Equal(g, w) {
		t.Fatalf("walked %d tasks:\n got %v\nwant %v", len(g), g, w)
	}
	for i := range got {
		sameTask(t, got[i], want[i])
	}
}
