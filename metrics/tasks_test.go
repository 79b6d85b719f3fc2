package metrics_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/envvault/envvault/metrics"
)

// countsStore answers fixed counts: the stores' own counts are checked
// by storetest (Tasks/LiveCounts) on SQLite and PostgreSQL.
type countsStore map[string]int

func (c countsStore) LiveTaskCounts(context.Context) (map[string]int, error) { return c, nil }
func (c countsStore) MasterKeyCounts(context.Context) (map[string]int, error) {
	return map[string]int{}, nil
}

// Tasks waiting for secrets are live: envvault_tasks has them by state
// awaiting_secrets (and they are not in the queue depth); waiting tasks
// that end without starting count as finished, cancelled or failed.
func TestWaitingTasks(t *testing.T) {
	m := metrics.New()
	m.WatchStore(countsStore{"queued": 2, "awaiting_secrets": 3, "running": 1}, "key1", slog.New(slog.DiscardHandler))
	m.TaskFinished("cancelled")
	m.TaskFinished("cancelled")
	m.TaskFinished("failed")
	m.TaskFinished("awaiting_secrets") // not a final state: not counted
	_, fams := scrape(t, m)
	wantValue(t, fams, "envvault_tasks", map[string]string{"state": "awaiting_secrets"}, 3)
	wantValue(t, fams, "envvault_tasks", map[string]string{"state": "queued"}, 2)
	wantValue(t, fams, "envvault_task_queue_depth", map[string]string{}, 2)
	wantValue(t, fams, "envvault_tasks_finished_total", map[string]string{"state": "cancelled"}, 2)
	wantValue(t, fams, "envvault_tasks_finished_total", map[string]string{"state": "failed"}, 1)
	if _, ok := value(fams, "envvault_tasks_finished_total", map[string]string{"state": "awaiting_secrets"}); ok {
		t.Error("a task that is still waiting was counted as finished")
	}
}
