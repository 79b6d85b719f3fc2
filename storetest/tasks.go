package storetest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	{name: "ConcurrentClaims", fn: testTaskConcurrentClaims},
	{name: "UpdateRoundTrip", fn: testTaskUpdateRoundTrip},
	{name: "FailedUpdateChangesNothing", fn: testTaskFailedUpdateChangesNothing},
	{name: "ConcurrentUpdates", fn: testTaskConcurrentUpdates},
	{name: "ActiveTasks", fn: testTaskActiveTasks},
	{name: "Logs", fn: testTaskLogs},
	{name: "ConcurrentLogAppends", fn: testTaskConcurrentLogAppends},
	{name: "TaskOutlivesProfile", fn: testTaskOutlivesProfile},
	{name: "DeletingUserDeletesTasks", fn: testTaskDeletingUserDeletesTasks},
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

func testTaskClaimOrder(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p, bp := f.mustProfile(alice, "p"), f.mustProfile(bob, "p")
	_, err := f.store.ClaimTask(f.ctx, "w1")
	wantErr(t, err, vault.ENOTFOUND, "")

	at := f.stamp()
	var queued []*orchestrator.Task
	for i, d := range []time.Duration{3, 1, 2, 1, 0, 1} { // of both users; ties at 1
		user, profile := alice, p.ID
		if i%2 == 1 {
			user, profile = bob, bp.ID
		}
		task := f.newTask(user, profile, fmt.Sprint(i))
		task.CreatedAt = at.Add(d * time.Second)
		queued = append(queued, f.mustCreateTask(task))
	}
	// Tasks that are not queued are never claimed.
	for _, s := range []orchestrator.Status{orchestrator.StatusStopped, orchestrator.StatusRunning, orchestrator.StatusFailed} {
		task := f.newTask(alice, p.ID, string(s))
		task.Status, task.CreatedAt = s, at.Add(-time.Hour)
		f.mustCreateTask(task)
	}
	want := newestFirst(queued)
	slices.Reverse(want) // oldest first

	for i, w := range want {
		worker := fmt.Sprintf("w%d", i%2)
		before := time.Now()
		got := f.mustClaim(worker)
		after := time.Now()
		if got.ID != w.ID {
			t.Fatalf("claim %d: got %s (created %s), want %s (created %s)", i, got.ID, got.CreatedAt, w.ID, w.CreatedAt)
		}
		// ClaimTask stamps UpdatedAt with its own clock.
		if got.UpdatedAt.Before(before.Truncate(time.Microsecond)) || got.UpdatedAt.After(after) {
			t.Errorf("claim %d: updated at %s, not between %s and %s", i, got.UpdatedAt, before, after)
		}
		claimed := *w
		claimed.Status, claimed.Worker, claimed.UpdatedAt = orchestrator.StatusStarting, worker, got.UpdatedAt
		sameTask(t, got, &claimed)
		sameTask(t, f.mustTask(w.UserID, w.ID), &claimed)
	}
	_, err = f.store.ClaimTask(f.ctx, "w1")
	wantErr(t, err, vault.ENOTFOUND, "")

	// A task queued again (a restart) is claimed again.
	again := f.mustUpdate(want[0].ID, func(t *orchestrator.Task) {
		t.Status, t.Worker, t.Attempt = orchestrator.StatusQueued, "", t.Attempt+1
	})
	if got := f.mustClaim("w9"); got.ID != again.ID || got.Attempt != 2 || got.Worker != "w9" {
		t.Errorf("claimed %s attempt %d by %q, want %s attempt 2 by w9", got.ID, got.Attempt, got.Worker, again.ID)
	}
}

func testTaskConcurrentClaims(t *testing.T, f *fixture) {
	const workers, n = 8, 60
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	queued := map[string]bool{}
	for i := range n {
		queued[f.mustQueue(alice, p.ID, fmt.Sprint(i)).ID] = true
	}

	claims := make([][]*orchestrator.Task, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for {
				task, err := f.store.ClaimTask(f.ctx, fmt.Sprintf("w%d", w))
				if vault.ErrorCode(err) == vault.ENOTFOUND {
					return
				}
				if err != nil {
					t.Errorf("worker %d: claim: %v", w, err)
					return
				}
				claims[w] = append(claims[w], task)
			}
		})
	}
	close(start)
	wg.Wait()

	seen := map[string]string{}
	for w, list := range claims {
		worker := fmt.Sprintf("w%d", w)
		for _, task := range list {
			if prev, ok := seen[task.ID]; ok {
				t.Errorf("task %s claimed by %s and %s", task.ID, prev, worker)
			}
			seen[task.ID] = worker
			if !queued[task.ID] {
				t.Errorf("%s claimed %s, which was never queued", worker, task.ID)
			}
			if task.Status != orchestrator.StatusStarting || task.Worker != worker {
				t.Errorf("%s claimed %s as %s by %q", worker, task.ID, task.Status, task.Worker)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d tasks claimed", len(seen), n)
	}
	for id, worker := range seen {
		if got := f.mustTask(alice, id); got.Status != orchestrator.StatusStarting || got.Worker != worker {
			t.Errorf("task %s stored as %s by %q, want starting by %s", id, got.Status, got.Worker, worker)
		}
	}
}

func testTaskUpdateRoundTrip(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")

	started, finished := f.stamp(), f.stamp()
	sources := []orchestrator.EnvSource{
		{Name: "ANTHROPIC_API_KEY", Source: orchestrator.SourceBaseline},
		{Name: "DEBUG", Source: orchestrator.SourceProfile},
		{Name: "GITHUB_TOKEN", Source: orchestrator.SourceSecret, SecretID: "sec_abc", Scope: string(vault.ScopeAgents), Version: 7},
		{Name: "NPM_TOKEN", Source: orchestrator.SourceSecret, SecretID: "sec_def", Scope: string(vault.ScopeAll), Version: 1},
		{Name: "TASK_ID", Source: orchestrator.SourceTask},
	}
	steps := []struct {
		name   string
		change func(*orchestrator.Task)
	}{
		{"every field set", func(x *orchestrator.Task) {
			code := 137
			x.Status, x.ExitCode, x.ContainerID, x.Error = orchestrator.StatusFailed, &code, "0123abcd", "exited with code 137 – “killed”"
			x.EnvSources, x.Worker, x.Attempt = sources, "host-1", 4
			x.StopRequested, x.RestartRequested = true, true
			x.UpdatedAt, x.StartedAt, x.FinishedAt = f.stamp(), &started, &finished
		}},
		{"exit code 0 is not nil", func(x *orchestrator.Task) {
			code := 0
			x.Status, x.ExitCode, x.Error = orchestrator.StatusSucceeded, &code, ""
			x.UpdatedAt = f.stamp()
		}},
		{"negative exit code", func(x *orchestrator.Task) {
			code := -1
			x.ExitCode = &code
		}},
		{"every field cleared", func(x *orchestrator.Task) {
			x.Status, x.ExitCode, x.ContainerID, x.Error = orchestrator.StatusQueued, nil, "", ""
			x.EnvSources, x.Worker, x.Attempt = nil, "", 5
			x.StopRequested, x.RestartRequested = false, false
			x.UpdatedAt, x.StartedAt, x.FinishedAt = f.stamp(), nil, nil
		}},
		{"empty env sources", func(x *orchestrator.Task) {
			x.EnvSources = []orchestrator.EnvSource{}
			x.Status = orchestrator.StatusRunning
		}},
		{"each status", func(x *orchestrator.Task) { x.Status = orchestrator.StatusStopped }},
	}
	want := task
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			f := f.sub(t)
			next := *want
			step.change(&next)
			got, err := f.store.UpdateTask(f.ctx, task.ID, func(cur *orchestrator.Task) error {
				// fn is given the task as stored.
				sameTask(t, cur, want)
				*cur = next
				return nil
			})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			sameTask(t, got, &next)
			sameTask(t, f.mustTask(alice, task.ID), &next)
			want = &next
		})
	}
	for _, s := range []orchestrator.Status{orchestrator.StatusQueued, orchestrator.StatusStarting, orchestrator.StatusRunning,
		orchestrator.StatusSucceeded, orchestrator.StatusFailed, orchestrator.StatusStopped} {
		if got := f.mustUpdate(task.ID, func(x *orchestrator.Task) { x.Status = s }); got.Status != s {
			t.Errorf("status %s written as %s", s, got.Status)
		}
		if got := f.mustTask(alice, task.ID); got.Status != s {
			t.Errorf("status %s read back as %s", s, got.Status)
		}
	}
}

func testTaskFailedUpdateChangesNothing(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")
	f.mustAppend(task.ID, "log")
	before := f.mustTask(alice, task.ID)

	scribble := func(x *orchestrator.Task) {
		code := 1
		x.Status, x.ExitCode, x.ContainerID, x.Error, x.Worker = orchestrator.StatusFailed, &code, "c", "e", "w"
		x.EnvSources = []orchestrator.EnvSource{{Name: "X", Source: orchestrator.SourceProfile}}
		x.Attempt, x.StopRequested, x.RestartRequested, x.UpdatedAt = 9, true, true, f.stamp()
	}
	errBoom := errors.New("boom")
	_, err := f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
		scribble(x)
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("UpdateTask returned %v, want fn's error", err)
	}
	sameTask(t, f.mustTask(alice, task.ID), before)

	// fn's vault error keeps its code.
	_, err = f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
		scribble(x)
		return vault.Invalid("status", "no")
	})
	wantErr(t, err, vault.EINVALID, "status")
	sameTask(t, f.mustTask(alice, task.ID), before)

	// The fields fixed at creation cannot be changed.
	bob := f.mustUser("bob")
	for _, tc := range []struct {
		name   string
		change func(*orchestrator.Task)
	}{
		{"id", func(x *orchestrator.Task) { x.ID = vault.NewID(vault.PrefixTask) }},
		{"user", func(x *orchestrator.Task) { x.UserID = bob }},
		{"profile", func(x *orchestrator.Task) { x.ProfileID = "prf_other" }},
		{"prompt", func(x *orchestrator.Task) { x.Prompt = "other" }},
		{"created_at", func(x *orchestrator.Task) { x.CreatedAt = x.CreatedAt.Add(time.Second) }},
	} {
		_, err := f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
			scribble(x)
			tc.change(x)
			return nil
		})
		if err == nil {
			t.Errorf("changing the %s was not refused", tc.name)
		}
		sameTask(t, f.mustTask(alice, task.ID), before)
	}
	f.wantNoTask(bob, task.ID)

	called := false
	_, err = f.store.UpdateTask(f.ctx, "tsk_nonexistent", func(*orchestrator.Task) error { called = true; return nil })
	wantErr(t, err, vault.ENOTFOUND, "")
	if called {
		t.Errorf("fn was called for a task that does not exist")
	}
	if chunks := f.mustLogs(task.ID, 0); len(chunks) != 1 {
		t.Errorf("failed updates touched the logs: %d chunks", len(chunks))
	}
}

func testTaskConcurrentUpdates(t *testing.T, f *fixture) {
	// Each update reads Attempt and writes it plus one: without the row
	// lock, updates would read the same value and increments be lost.
	const racers, each = 8, 10
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			<-start
			for range each {
				_, err := f.store.UpdateTask(f.ctx, task.ID, func(x *orchestrator.Task) error {
					x.Attempt++
					return nil
				})
				if err != nil {
					t.Errorf("update: %v", err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := f.mustTask(alice, task.ID).Attempt; got != 1+racers*each {
		t.Errorf("attempt %d after %d increments from 1, want %d", got, racers*each, 1+racers*each)
	}
}

func testTaskActiveTasks(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p, bp := f.mustProfile(alice, "p"), f.mustProfile(bob, "p")
	if list := f.mustActive(""); len(list) != 0 {
		t.Fatalf("fresh store: active %v", taskIDs(list))
	}
	// Of both users, claimed in creation order.
	a1, a2 := f.mustQueue(alice, p.ID, "a1"), f.mustQueue(alice, p.ID, "a2")
	b1, b2 := f.mustQueue(bob, bp.ID, "b1"), f.mustQueue(bob, bp.ID, "b2")
	a3, a4 := f.mustQueue(alice, p.ID, "a3"), f.mustQueue(alice, p.ID, "a4")
	for _, c := range []struct {
		task   *orchestrator.Task
		worker string
	}{{a1, "w1"}, {a2, "w1"}, {b1, "w2"}, {b2, "w2"}, {a3, "w1"}, {a4, "w2"}} {
		if got := f.mustClaim(c.worker); got.ID != c.task.ID {
			t.Fatalf("claimed %s, want %s", got.ID, c.task.ID)
		}
	}
	f.mustQueue(alice, p.ID, "queued") // not active
	now := f.stamp()
	f.mustUpdate(a2.ID, func(x *orchestrator.Task) { x.Status, x.StartedAt = orchestrator.StatusRunning, &now })
	f.mustUpdate(b1.ID, func(x *orchestrator.Task) { x.Status, x.StopRequested = orchestrator.StatusRunning, true })
	f.mustUpdate(a3.ID, func(x *orchestrator.Task) { x.Status = orchestrator.StatusSucceeded })
	f.mustUpdate(a4.ID, func(x *orchestrator.Task) { x.Status = orchestrator.StatusStopped })
	// A task queued again keeps no worker.
	f.mustUpdate(b2.ID, func(x *orchestrator.Task) { x.Status, x.Worker = orchestrator.StatusQueued, "" })

	byID := map[string]*orchestrator.Task{}
	for _, task := range []*orchestrator.Task{a1, a2, b1} {
		byID[task.ID] = f.mustTask(task.UserID, task.ID)
	}
	for _, tc := range []struct {
		worker string
		want   []*orchestrator.Task
	}{
		{"w1", []*orchestrator.Task{a1, a2}},
		{"w2", []*orchestrator.Task{b1}},
		{"", []*orchestrator.Task{a1, a2, b1}},
		{"w3", nil},
	} {
		got := f.mustActive(tc.worker)
		// No order is promised: compared as sets.
		g, w := slices.Sorted(slices.Values(taskIDs(got))), slices.Sorted(slices.Values(taskIDs(tc.want)))
		if !slices.Equal(g, w) {
			t.Errorf("active tasks of %q: got %v, want %v", tc.worker, g, w)
			continue
		}
		for _, task := range got {
			sameTask(t, task, byID[task.ID])
		}
	}
}

func chunkData(chunks []orchestrator.LogChunk) []string {
	out := make([]string, len(chunks))
	for i, c := range chunks {
		out[i] = string(c.Data)
	}
	return out
}

func chunkSeqs(chunks []orchestrator.LogChunk) []int64 {
	out := make([]int64, len(chunks))
	for i, c := range chunks {
		out[i] = c.Seq
	}
	return out
}

func testTaskLogs(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task, other := f.mustQueue(alice, p.ID, "one"), f.mustQueue(alice, p.ID, "two")
	if chunks := f.mustLogs(task.ID, 0); len(chunks) != 0 {
		t.Fatalf("fresh task has logs: %v", chunkData(chunks))
	}

	// Bytes, not text: NUL, invalid UTF-8, CR, and a chunk of 1 MiB.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	written := [][]byte{[]byte("hello\n"), {0, 0xff, 0xfe, '\r', '\n'}, []byte("*** masked ***\n"), big, []byte("x")}
	for i, data := range written {
		if err := f.store.AppendTaskLog(f.ctx, task.ID, data); err != nil {
			t.Fatalf("append chunk %d: %v", i, err)
		}
		f.mustAppend(other.ID, fmt.Sprintf("other %d", i))
	}
	all := f.mustLogs(task.ID, 0)
	if len(all) != len(written) {
		t.Fatalf("%d chunks read, want %d", len(all), len(written))
	}
	for i, c := range all {
		if !bytes.Equal(c.Data, written[i]) {
			t.Errorf("chunk %d: got %d bytes %.20q, want %d bytes %.20q", i, len(c.Data), c.Data, len(written[i]), written[i])
		}
		if c.Seq < 1 || (i > 0 && c.Seq <= all[i-1].Seq) {
			t.Errorf("seqs %v do not grow from at least 1", chunkSeqs(all))
		}
	}
	for i := range all {
		after := f.mustLogs(task.ID, all[i].Seq)
		if g, w := chunkSeqs(after), chunkSeqs(all[i+1:]); !slices.Equal(g, w) {
			t.Errorf("after seq %d: got seqs %v, want %v", all[i].Seq, g, w)
		}
	}
	if got := chunkData(f.mustLogs(other.ID, 0)); !slices.Equal(got, []string{"other 0", "other 1", "other 2", "other 3", "other 4"}) {
		t.Errorf("the other task's logs: %q", got)
	}
	if chunks := f.mustLogs("tsk_nonexistent", 0); len(chunks) != 0 {
		t.Errorf("a task that does not exist has logs: %v", chunkData(chunks))
	}
	wantErr(t, f.store.AppendTaskLog(f.ctx, "tsk_nonexistent", []byte("x")), vault.ENOTFOUND, "")
	if err := f.store.AppendTaskLog(f.ctx, task.ID, nil); err != nil {
		t.Errorf("append an empty chunk: %v", err)
	}

	// Clearing empties the task's logs, not another's, and the seqs of
	// the chunks after it go on: a reader at seq n never mistakes a new
	// chunk for one it has read.
	last := f.mustLogs(task.ID, 0)
	lastSeq := last[len(last)-1].Seq
	if err := f.store.ClearTaskLogs(f.ctx, task.ID); err != nil {
		t.Fatalf("clear logs: %v", err)
	}
	if chunks := f.mustLogs(task.ID, 0); len(chunks) != 0 {
		t.Errorf("cleared logs still hold %q", chunkData(chunks))
	}
	if n := len(f.mustLogs(other.ID, 0)); n != len(written) {
		t.Errorf("clearing one task's logs left the other %d chunks, want %d", n, len(written))
	}
	f.mustAppend(task.ID, "after clear")
	after := f.mustLogs(task.ID, 0)
	if len(after) != 1 || string(after[0].Data) != "after clear" || after[0].Seq <= lastSeq {
		t.Errorf("after clearing at seq %d: got seqs %v data %q, want one chunk past it", lastSeq, chunkSeqs(after), chunkData(after))
	}
	if err := f.store.ClearTaskLogs(f.ctx, "tsk_nonexistent"); err != nil {
		t.Errorf("clear the logs of a task that does not exist: %v", err)
	}
}

func testTaskConcurrentLogAppends(t *testing.T, f *fixture) {
	const writers, each = 8, 25
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				if err := f.store.AppendTaskLog(f.ctx, task.ID, fmt.Appendf(nil, "%d:%d", w, i)); err != nil {
					t.Errorf("writer %d: append %d: %v", w, i, err)
					return
				}
			}
		})
	}
	// A follower reads, as Orchestrator.Logs does, the chunks after the
	// last one it has seen, while they are written: it must miss none.
	writing := make(chan struct{})
	followed := make(chan []orchestrator.LogChunk, 1)
	go func() {
		var got []orchestrator.LogChunk
		var seq int64
		for done := false; !done; {
			select {
			case <-writing:
				done = true // one more read, after the last write
			default:
			}
			chunks, err := f.store.TaskLogs(f.ctx, task.ID, seq)
			if err != nil {
				t.Errorf("follow: %v", err)
				break
			}
			got = append(got, chunks...)
			if len(chunks) > 0 {
				seq = chunks[len(chunks)-1].Seq
			}
		}
		followed <- got
	}()
	close(start)
	wg.Wait()
	close(writing)

	chunks := f.mustLogs(task.ID, 0)
	if len(chunks) != writers*each {
		t.Fatalf("%d chunks, want %d", len(chunks), writers*each)
	}
	if g, w := chunkSeqs(<-followed), chunkSeqs(chunks); !slices.Equal(g, w) {
		t.Errorf("a follower saw seqs\n%v\nwant\n%v", g, w)
	}
	next := make([]int, writers) // each writer's chunks come in its order
	for i, c := range chunks {
		if i > 0 && c.Seq <= chunks[i-1].Seq {
			t.Fatalf("seqs not strictly ascending at %d: %d after %d", i, c.Seq, chunks[i-1].Seq)
		}
		var w, n int
		if _, err := fmt.Sscanf(string(c.Data), "%d:%d", &w, &n); err != nil || w < 0 || w >= writers {
			t.Fatalf("chunk %d holds %q", c.Seq, c.Data)
		}
		if n != next[w] {
			t.Errorf("chunk %d: writer %d's chunk %d, want its chunk %d", c.Seq, w, n, next[w])
		}
		next[w] = n + 1
	}
}

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
