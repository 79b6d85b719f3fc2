package sqlite

import (
	"context"
	"fmt"
)

// LiveTaskCounts counts every user's tasks that are queued, awaiting
// secrets, starting or running, by status, for the metrics. The partial
// indexes tasks_queue, tasks_awaiting and tasks_active hold exactly these
// rows, so the count does not grow with the finished tasks kept.
func (db *DB) LiveTaskCounts(ctx context.Context) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT 'queued', count(*) FROM tasks WHERE status = 'queued'
		UNION ALL
		SELECT 'awaiting_secrets', count(*) FROM tasks WHERE status = 'awaiting_secrets'
		UNION ALL
		SELECT status, count(*) FROM tasks WHERE status IN ('starting', 'running') GROUP BY status`)
	if err != nil {
		return nil, db.unavailable(db.read, fmt.Errorf("count live tasks: %w", err))
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("scan live task count: %w", err)
		}
		out[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, db.unavailable(db.read, fmt.Errorf("count live tasks: %w", err))
	}
	return out, nil
}
