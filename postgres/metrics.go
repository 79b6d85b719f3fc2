package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LiveTaskCounts counts every user's tasks that are queued, awaiting
// secrets, starting or running, by status, for the metrics (in system
// mode: every user's rows). The partial indexes tasks_queue,
// tasks_awaiting and tasks_active hold exactly these rows, so the count
// does not grow with the finished tasks kept.
func (db *DB) LiveTaskCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT 'queued', count(*) FROM tasks WHERE status = 'queued'
			UNION ALL
			SELECT 'awaiting_secrets', count(*) FROM tasks WHERE status = 'awaiting_secrets'
			UNION ALL
			SELECT status, count(*) FROM tasks WHERE status IN ('starting', 'running') GROUP BY status`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var status string
			var n int
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
			out[status] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("count live tasks: %w", err)
	}
	return out, nil
}
