package sqlstore

import (
	"errors"
	"strconv"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// TaskColumns are the columns of a task row, in the order both stores
// scan them.
const TaskColumns = `id, user_id, profile_id, prompt, status, exit_code, container_id, error, env_sources,
	worker, attempt, stop_requested, restart_requested, created_at, updated_at, started_at, finished_at, sandbox`

// MutableTaskColumns are the columns UpdateTask writes back, in the order
// of each store's task values.
const MutableTaskColumns = `status, exit_code, container_id, error, env_sources, worker, attempt,
	stop_requested, restart_requested, updated_at, started_at, finished_at, sandbox`

// TaskPageWhere is the WHERE clause of a page of userID's tasks in the
// newest-first list, after f.After, whose Key is the creation time as
// orchestrator.TaskCursor writes it; timeArg encodes a time as the dialect
// stores it. Returns EINVALID if f.After's Key is not such a time.
func TaskPageWhere(ph Placeholder, timeArg func(time.Time) any, userID string, f vault.ListFilter) (*Where, error) {
	w := NewWhere(ph)
	w.Add("user_id = ?", userID)
	if f.After != nil {
		us, err := strconv.ParseInt(f.After.Key, 10, 64)
		if err != nil {
			return nil, vault.Invalid("cursor", "is not a cursor this API returned")
		}
		w.Add("(created_at, id) < (?, ?)", timeArg(time.UnixMicro(us).UTC()), f.After.ID)
	}
	return w, nil
}

// ActiveTasksWhere is the WHERE clause of the tasks starting or running,
// claimed by worker, or by any worker if worker is "".
func ActiveTasksWhere(ph Placeholder, worker string) *Where {
	w := NewWhere(ph)
	w.Add("status IN ('starting', 'running')")
	if worker != "" {
		w.Add("worker = ?", worker)
	}
	return w
}

// CheckImmutable returns an error if an UpdateTask function changed a
// field of a task that is fixed at its creation (old is the task as read).
func CheckImmutable(old, t *orchestrator.Task) error {
	if t.ID != old.ID || t.UserID != old.UserID || t.ProfileID != old.ProfileID || t.Prompt != old.Prompt ||
		!t.CreatedAt.Equal(old.CreatedAt) {
		return errors.New("update task " + old.ID + ": id, user, profile, prompt and creation time cannot change")
	}
	return nil
}

// EnvSources returns t's env sources as stored: the column holds a JSON
// array, never null.
func EnvSources(t *orchestrator.Task) []orchestrator.EnvSource {
	if t.EnvSources == nil {
		return []orchestrator.EnvSource{}
	}
	return t.EnvSources
}
