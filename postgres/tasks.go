package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

var _ orchestrator.Store = (*DB)(nil)

func scanTask(row pgx.Row) (*orchestrator.Task, error) {
	var t orchestrator.Task
	var status string
	err := row.Scan(&t.ID, &t.UserID, &t.ProfileID, &t.Prompt, &status, &t.ExitCode, &t.ContainerID, &t.Error,
		&t.EnvSources, &t.Worker, &t.Attempt, &t.StopRequested, &t.RestartRequested,
		&t.CreatedAt, &t.UpdatedAt, &t.StartedAt, &t.FinishedAt, &t.Sandbox)
	if err != nil {
		return nil, err
	}
	t.Status = orchestrator.Status(status)
	if len(t.EnvSources) == 0 {
		t.EnvSources = nil
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	t.StartedAt, t.FinishedAt = utcPtr(t.StartedAt), utcPtr(t.FinishedAt)
	return &t, nil
}

func scanTasks(rows pgx.Rows) ([]*orchestrator.Task, error) {
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orchestrator.Task, error) { return scanTask(row) })
	if err != nil {
		return nil, convert(err)
	}
	return list, nil
}

// mutableTaskValues are the values of sqlstore.MutableTaskColumns.
func mutableTaskValues(t *orchestrator.Task) []any {
	return []any{string(t.Status), t.ExitCode, t.ContainerID, t.Error, sqlstore.EnvSources(t), t.Worker, t.Attempt,
		t.StopRequested, t.RestartRequested, t.UpdatedAt, t.StartedAt, t.FinishedAt, t.Sandbox}
}

// insertTask inserts a task of the values of CreateTask's arguments ($1 to
// $18) from the rows of the FROM clause that follows it. The casts type the
// parameters, which a SELECT list would otherwise leave as text.
const insertTask = `INSERT INTO tasks (id, user_id, profile_id, prompt, created_at, ` + sqlstore.MutableTaskColumns + `)
	SELECT $1::text, $2::text, $3::text, $4::text, $5::timestamptz,
		$6::text, $7::integer, $8::text, $9::text, $10::jsonb, $11::text, $12::integer,
		$13::boolean, $14::boolean, $15::timestamptz, $16::timestamptz, $17::timestamptz, $18::jsonb`

// CreateTask inserts t as given. Returns ENOTFOUND if its profile does not
// exist or is not its user's, ECONFLICT if its id is taken.
func (db *DB) CreateTask(ctx context.Context, t *orchestrator.Task) error {
	// The profile check and the insert are one statement: a row is
	// inserted only if the profile is the user's. The profile is not a
	// foreign key, as a task outlives it.
	args := append([]any{t.ID, t.UserID, t.ProfileID, t.Prompt, t.CreatedAt}, mutableTaskValues(t)...)
	var tag pgconn.CommandTag
	err := db.userBatch(ctx, t.UserID, func(b *pgx.Batch) {
		b.Queue(insertTask+` FROM profiles WHERE id = $3 AND user_id = $2`, args...).Exec(func(ct pgconn.CommandTag) error {
			tag = ct
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("create task %s: %w", t.ID, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "profile not found")
	}
	return nil
}

// CreateQueuedTask is CreateTask under the user's row lock, taken first,
// in the same pipeline: the count of the user's queued tasks and the
// insert are one statement, and a concurrent creation of the same user
// waits for the lock, then counts this task. Returns
// orchestrator.QueueFull when the user has maxQueued queued already.
func (db *DB) CreateQueuedTask(ctx context.Context, t *orchestrator.Task, maxQueued int) error {
	args := append([]any{t.ID, t.UserID, t.ProfileID, t.Prompt, t.CreatedAt}, mutableTaskValues(t)...)
	args = append(args, maxQueued)
	var queued int
	var inserted, profile bool
	err := db.userBatch(ctx, t.UserID, func(b *pgx.Batch) {
		b.Queue(lockUser, t.UserID).Exec(func(pgconn.CommandTag) error { return nil })
		b.Queue(`WITH n AS (SELECT count(*)::integer AS queued FROM tasks WHERE user_id = $2 AND status = 'queued'),
		ins AS (`+insertTask+` FROM profiles, n WHERE profiles.id = $3 AND profiles.user_id = $2 AND n.queued < $19::integer
			RETURNING 1)
		SELECT n.queued, EXISTS (SELECT 1 FROM ins), EXISTS (SELECT 1 FROM profiles WHERE id = $3 AND user_id = $2) FROM n`,
			args...).QueryRow(func(row pgx.Row) error { return row.Scan(&queued, &inserted, &profile) })
	})
	switch {
	case err != nil:
		return fmt.Errorf("create task %s: %w", t.ID, convert(err))
	case !profile:
		return vault.Errorf(vault.ENOTFOUND, "profile not found")
	case !inserted:
		return orchestrator.QueueFull(queued)
	}
	return nil
}

// Task returns a task of userID. Returns ENOTFOUND if it does not exist or
// is another user's.
func (db *DB) Task(ctx context.Context, userID, id string) (*orchestrator.Task, error) {
	var t *orchestrator.Task
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(`SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE id = $1 AND user_id = $2`, id, userID).QueryRow(func(row pgx.Row) (err error) {
			t, err = scanTask(row)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read task %s: %w", id, convertNotFound(err, "task"))
	}
	return t, nil
}

// Tasks returns up to f.Limit of userID's tasks, newest first (by creation
// time, then by id, both descending), after f.After, whose Key is the
// creation time as orchestrator.TaskCursor writes it. f.Query is ignored.
// Returns EINVALID if f.After's Key is not such a time.
func (db *DB) Tasks(ctx context.Context, userID string, f vault.ListFilter) ([]*orchestrator.Task, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	w, err := sqlstore.TaskPageWhere(sqlstore.Dollar, timeArg, userID, f)
	if err != nil {
		return nil, err
	}
	var list []*orchestrator.Task
	err = db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(`SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE `+w.String()+
			` ORDER BY created_at DESC, id DESC LIMIT `+strconv.Itoa(f.Limit), w.Args...).Query(func(rows pgx.Rows) (err error) {
			list, err = scanTasks(rows)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", convert(err))
	}
	return list, nil
}

// claimTask takes the oldest queued task of a user not in $3. SKIP LOCKED lets concurrent
// claims, of any process, each take a different row instead of queueing on
// the same one; a row that stopped being queued while its lock was awaited
// is re-checked and passed over (read committed).
const claimTask = `UPDATE tasks SET status = 'starting', worker = $1, updated_at = $2
	WHERE status = 'queued' AND id = (
		SELECT id FROM tasks WHERE status = 'queued' AND user_id <> ALL($3::text[])
		ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
	RETURNING ` + sqlstore.TaskColumns

// ClaimTask moves the oldest queued task (by creation time, then id) of a
// user not in skipUsers to StatusStarting, claimed by worker, with
// UpdatedAt the current time, and returns it. Concurrent claims, from any
// process, never return the same task. Returns ENOTFOUND when no such task
// is queued. The queue is every user's: it runs in system mode.
func (db *DB) ClaimTask(ctx context.Context, worker string, skipUsers ...string) (*orchestrator.Task, error) {
	var t *orchestrator.Task
	skip := jsonList(skipUsers) // never NULL: <> ALL(NULL) would match no row
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(claimTask, worker, time.Now().UTC().Truncate(time.Microsecond), skip).QueryRow(func(row pgx.Row) (err error) {
			t, err = scanTask(row)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("claim task: %w", convertNotFound(err, "queued task"))
	}
	return t, nil
}

// UpdateTask reads a task under its row lock, lets fn change it, and writes
// back every field but ID, UserID, ProfileID, Prompt and CreatedAt in the
// same transaction, unless fn fails. It returns the task as written.
// Returns ENOTFOUND if it does not exist, fn's error if fn fails, and an
// error if fn changed one of the fields that are not written back. The task
// is named by id alone, for workers: it runs in system mode.
func (db *DB) UpdateTask(ctx context.Context, id string, fn func(*orchestrator.Task) error) (*orchestrator.Task, error) {
	var t *orchestrator.Task
	err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) error {
		// FOR NO KEY UPDATE, not FOR UPDATE: it serializes updates of the
		// task without blocking the key-share locks that inserts of its log
		// chunks take.
		var err error
		t, err = scanTask(tx.QueryRow(ctx, `SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE id = $1 FOR NO KEY UPDATE`, id))
		if err != nil {
			return fmt.Errorf("read task %s: %w", id, convertNotFound(err, "task"))
		}
		old := *t
		if err := fn(t); err != nil {
			return err
		}
		if err := sqlstore.CheckImmutable(&old, t); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE tasks SET (`+sqlstore.MutableTaskColumns+`) =
				ROW($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			WHERE id = $1`, append([]any{id}, mutableTaskValues(t)...)...)
		if err != nil {
			return fmt.Errorf("update task %s: %w", id, convert(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ActiveTasks returns the tasks in StatusStarting or StatusRunning claimed
// by worker, or by any worker if worker is "", oldest first. It runs in
// system mode.
func (db *DB) ActiveTasks(ctx context.Context, worker string) ([]*orchestrator.Task, error) {
	w := sqlstore.ActiveTasksWhere(sqlstore.Dollar, worker)
	var list []*orchestrator.Task
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(`SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE `+w.String()+` ORDER BY created_at, id`, w.Args...).Query(func(rows pgx.Rows) (err error) {
			list, err = scanTasks(rows)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list active tasks: %w", convert(err))
	}
	return list, nil
}

// appendTaskLog takes the chunk's seq from the task's counter: the update
// holds the task's row lock until commit, so concurrent appends get
// distinct seqs, and become visible in the order of their seqs (a reader
// that has seen seq n never misses n-1 later).
const appendTaskLog = `WITH next AS (
		UPDATE tasks SET last_log_seq = last_log_seq + 1 WHERE id = $1 RETURNING id, last_log_seq)
	INSERT INTO task_logs (task_id, seq, data) SELECT id, last_log_seq, $2 FROM next`

// AppendTaskLog stores data as the next chunk of a task's output. Seqs
// start at 1 and grow by one per chunk; a seq is never reused, even after
// ClearTaskLogs. Returns ENOTFOUND if the task does not exist. Like the
// other log methods, it names the task by id alone and runs in system mode.
func (db *DB) AppendTaskLog(ctx context.Context, taskID string, data []byte) error {
	if data == nil {
		data = []byte{} // the column is NOT NULL; nil encodes as NULL
	}
	var tag pgconn.CommandTag
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(appendTaskLog, taskID, data).Exec(func(ct pgconn.CommandTag) error {
			tag = ct
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("append log of task %s: %w", taskID, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "task not found")
	}
	return nil
}

// TaskLogs returns the chunks of a task's output after afterSeq, in order:
// all of them after 0. A task that does not exist has none.
func (db *DB) TaskLogs(ctx context.Context, taskID string, afterSeq int64) ([]orchestrator.LogChunk, error) {
	var chunks []orchestrator.LogChunk
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(`SELECT seq, data FROM task_logs WHERE task_id = $1 AND seq > $2 ORDER BY seq`,
			taskID, afterSeq).Query(func(rows pgx.Rows) (err error) {
			chunks, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (orchestrator.LogChunk, error) {
				var c orchestrator.LogChunk
				err := row.Scan(&c.Seq, &c.Data)
				return c, err
			})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read logs of task %s: %w", taskID, err)
	}
	return chunks, nil
}

// ClearTaskLogs deletes a task's stored output. The seqs of the chunks
// appended after it go on from the last one before it.
func (db *DB) ClearTaskLogs(ctx context.Context, taskID string) error {
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(`DELETE FROM task_logs WHERE task_id = $1`, taskID)
	})
	if err != nil {
		return fmt.Errorf("clear logs of task %s: %w", taskID, err)
	}
	return nil
}

// QueuedTasks counts userID's queued tasks.
func (db *DB) QueuedTasks(ctx context.Context, userID string) (int, error) {
	var n int
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(`SELECT count(*) FROM tasks WHERE user_id = $1 AND status = 'queued'`, userID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&n)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("count queued tasks: %w", convert(err))
	}
	return n, nil
}
