package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

var _ orchestrator.Store = (*DB)(nil)

type rowScanner interface {
	Scan(dest ...any) error
}

func scanTask(row rowScanner) (*orchestrator.Task, error) {
	var t orchestrator.Task
	var status, sources string
	var exitCode, started, finished sql.NullInt64
	var created, updated int64
	var sandbox sql.NullString
	err := row.Scan(&t.ID, &t.UserID, &t.ProfileID, &t.Prompt, &status, &exitCode, &t.ContainerID, &t.Error,
		&sources, &t.Worker, &t.Attempt, &t.StopRequested, &t.RestartRequested, &created, &updated, &started, &finished, &sandbox)
	if err != nil {
		return nil, err
	}
	t.Status = orchestrator.Status(status)
	if exitCode.Valid {
		code := int(exitCode.Int64)
		t.ExitCode = &code
	}
	if err := json.Unmarshal([]byte(sources), &t.EnvSources); err != nil {
		return nil, fmt.Errorf("decode env sources of task %s: %w", t.ID, err)
	}
	if len(t.EnvSources) == 0 {
		t.EnvSources = nil
	}
	if sandbox.Valid {
		if err := json.Unmarshal([]byte(sandbox.String), &t.Sandbox); err != nil {
			return nil, fmt.Errorf("decode sandbox of task %s: %w", t.ID, err)
		}
	}
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	t.StartedAt, t.FinishedAt = fromNullMicros(started), fromNullMicros(finished)
	return &t, nil
}

func queryTasks(ctx context.Context, q queryer, query string, args ...any) ([]*orchestrator.Task, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	list, err := collect(rows, err, func(rows *sql.Rows) (*orchestrator.Task, error) { return scanTask(rows) })
	if err != nil {
		return nil, fmt.Errorf("read tasks: %w", err)
	}
	return list, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// taskValues are the columns of t that UpdateTask writes back, in the order
// of sqlstore.MutableTaskColumns.
func taskValues(t *orchestrator.Task) ([]any, error) {
	sources, err := json.Marshal(sqlstore.EnvSources(t))
	if err != nil {
		return nil, fmt.Errorf("encode env sources of task %s: %w", t.ID, err)
	}
	var exitCode sql.NullInt64
	if t.ExitCode != nil {
		exitCode = sql.NullInt64{Int64: int64(*t.ExitCode), Valid: true}
	}
	var sandbox sql.NullString
	if t.Sandbox != nil {
		b, err := json.Marshal(t.Sandbox)
		if err != nil {
			return nil, fmt.Errorf("encode sandbox of task %s: %w", t.ID, err)
		}
		sandbox = sql.NullString{String: string(b), Valid: true}
	}
	return []any{string(t.Status), exitCode, t.ContainerID, t.Error, string(sources), t.Worker, t.Attempt,
		t.StopRequested, t.RestartRequested, micros(t.UpdatedAt), nullMicros(t.StartedAt), nullMicros(t.FinishedAt), sandbox}, nil
}

// CreateTask inserts t as given. Returns ENOTFOUND if its profile does not
// exist or is not its user's, ECONFLICT if its id is taken.
func (db *DB) CreateTask(ctx context.Context, t *orchestrator.Task) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error { return insertTask(ctx, stx, t) })
}

// CreateQueuedTask is CreateTask refused with orchestrator.QueueFull when
// the user has maxQueued tasks queued already: counted and inserted in one
// write transaction, which holds the database's one writer lock.
func (db *DB) CreateQueuedTask(ctx context.Context, t *orchestrator.Task, maxQueued int) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error {
		var n int
		if err := stx.QueryRowContext(ctx, `SELECT count(*) FROM tasks WHERE user_id = ? AND status = 'queued'`, t.UserID).Scan(&n); err != nil {
			return convert(err, "count queued tasks")
		}
		if n >= maxQueued {
			return orchestrator.QueueFull(n)
		}
		return insertTask(ctx, stx, t)
	})
}

// insertTask inserts t if its profile is its user's.
func insertTask(ctx context.Context, stx *sql.Tx, t *orchestrator.Task) error {
	vals, err := taskValues(t)
	if err != nil {
		return err
	}
	// The profile check and the insert are one statement: a row is
	// inserted only if the profile is the user's. The profile is not a
	// foreign key, as a task outlives it.
	args := append([]any{t.ID, t.UserID, t.ProfileID, t.Prompt, micros(t.CreatedAt)}, vals...)
	args = append(args, t.ProfileID, t.UserID)
	res, err := stx.ExecContext(ctx, `
		INSERT INTO tasks (id, user_id, profile_id, prompt, created_at, `+sqlstore.MutableTaskColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		FROM profiles WHERE id = ? AND user_id = ?`, args...)
	if err != nil {
		return convert(err, "insert task "+t.ID, conflictAs("id", "a task of this id already exists"))
	}
	return oneRow(res, "profile")
}

// Task returns a task of userID. Returns ENOTFOUND if it does not exist or
// is another user's.
func (db *DB) Task(ctx context.Context, userID, id string) (*orchestrator.Task, error) {
	t, err := scanTask(db.read.QueryRowContext(ctx, `SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE id = ? AND user_id = ?`, id, userID))
	if err != nil {
		return nil, db.unavailable(db.read, convert(err, "read task "+id, noRowsAs(notFound("task"))))
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
	w, err := sqlstore.TaskPageWhere(sqlstore.Question, timeArg, userID, f)
	if err != nil {
		return nil, err
	}
	list, err := queryTasks(ctx, db.read, `SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE `+w.String()+
		` ORDER BY created_at DESC, id DESC LIMIT `+strconv.Itoa(f.Limit), w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return list, nil
}

// ClaimTask moves the oldest queued task (by creation time, then id) of a
// user not in skipUsers to StatusStarting, claimed by worker, with
// UpdatedAt the current time, and returns it. Claims are serialized by the
// database's write lock, which other processes on the file take too.
// Returns ENOTFOUND when no such task is queued.
func (db *DB) ClaimTask(ctx context.Context, worker string, skipUsers ...string) (*orchestrator.Task, error) {
	now := micros(time.Now())
	skip, err := json.Marshal(nonNil(skipUsers))
	if err != nil {
		return nil, fmt.Errorf("encode skipped users: %w", err)
	}
	var t *orchestrator.Task
	err = db.writeTx(ctx, func(stx *sql.Tx) error {
		var err error
		t, err = scanTask(stx.QueryRowContext(ctx, `
			UPDATE tasks SET status = 'starting', worker = ?, updated_at = ?
			WHERE id = (SELECT id FROM tasks WHERE status = 'queued' AND user_id NOT IN (SELECT value FROM json_each(?))
				ORDER BY created_at, id LIMIT 1)
			RETURNING `+sqlstore.TaskColumns, worker, now, string(skip)))
		if err != nil {
			return convert(err, "claim task", noRowsAs(notFound("queued task")))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// UpdateTask reads a task in a write transaction (which holds the
// database's write lock, the row lock of SQLite), lets fn change it, and
// writes back every field but ID, UserID, ProfileID, Prompt and CreatedAt,
// unless fn fails. It returns the task as written. Returns ENOTFOUND if it
// does not exist, fn's error if fn fails, and an error if fn changed one of
// the fields that are not written back.
func (db *DB) UpdateTask(ctx context.Context, id string, fn func(*orchestrator.Task) error) (*orchestrator.Task, error) {
	var t *orchestrator.Task
	err := db.writeTx(ctx, func(stx *sql.Tx) error {
		var err error
		t, err = scanTask(stx.QueryRowContext(ctx, `SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE id = ?`, id))
		if err != nil {
			return convert(err, "read task "+id, noRowsAs(notFound("task")))
		}
		old := *t
		if err := fn(t); err != nil {
			return err
		}
		if err := sqlstore.CheckImmutable(&old, t); err != nil {
			return err
		}
		vals, err := taskValues(t)
		if err != nil {
			return err
		}
		_, err = stx.ExecContext(ctx, `
			UPDATE tasks SET status = ?, exit_code = ?, container_id = ?, error = ?, env_sources = ?, worker = ?,
				attempt = ?, stop_requested = ?, restart_requested = ?, updated_at = ?, started_at = ?, finished_at = ?,
				sandbox = ?
			WHERE id = ?`, append(vals, id)...)
		if err != nil {
			return fmt.Errorf("update task %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ActiveTasks returns the tasks in StatusStarting or StatusRunning claimed
// by worker, or by any worker if worker is "", oldest first.
func (db *DB) ActiveTasks(ctx context.Context, worker string) ([]*orchestrator.Task, error) {
	w := sqlstore.ActiveTasksWhere(sqlstore.Question, worker)
	list, err := queryTasks(ctx, db.read, `SELECT `+sqlstore.TaskColumns+` FROM tasks WHERE `+w.String()+
		` ORDER BY created_at, id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list active tasks: %w", err)
	}
	return list, nil
}

// AppendTaskLog stores data as the next chunk of a task's output. Seqs
// start at 1 and grow by one per chunk; a seq is never reused, even after
// ClearTaskLogs. Returns ENOTFOUND if the task does not exist.
func (db *DB) AppendTaskLog(ctx context.Context, taskID string, data []byte) error {
	if data == nil {
		data = []byte{} // the column is NOT NULL; nil binds as NULL
	}
	return db.writeTx(ctx, func(stx *sql.Tx) error {
		var seq int64
		err := stx.QueryRowContext(ctx, `UPDATE tasks SET last_log_seq = last_log_seq + 1 WHERE id = ? RETURNING last_log_seq`,
			taskID).Scan(&seq)
		if err != nil {
			return convert(err, "append log of task "+taskID, noRowsAs(notFound("task")))
		}
		if _, err := stx.ExecContext(ctx, `INSERT INTO task_logs (task_id, seq, data) VALUES (?, ?, ?)`,
			taskID, seq, data); err != nil {
			return fmt.Errorf("append log of task %s: %w", taskID, err)
		}
		return nil
	})
}

// TaskLogs returns the chunks of a task's output after afterSeq, in order:
// all of them after 0. A task that does not exist has none.
func (db *DB) TaskLogs(ctx context.Context, taskID string, afterSeq int64) ([]orchestrator.LogChunk, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, data FROM task_logs WHERE task_id = ? AND seq > ? ORDER BY seq`,
		taskID, afterSeq)
	chunks, err := collect(rows, err, func(rows *sql.Rows) (c orchestrator.LogChunk, err error) {
		return c, rows.Scan(&c.Seq, &c.Data)
	})
	if err != nil {
		return nil, db.unavailable(db.read, fmt.Errorf("read logs of task %s: %w", taskID, err))
	}
	return chunks, nil
}

// ClearTaskLogs deletes a task's stored output. The seqs of the chunks
// appended after it go on from the last one before it.
func (db *DB) ClearTaskLogs(ctx context.Context, taskID string) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error {
		if _, err := stx.ExecContext(ctx, `DELETE FROM task_logs WHERE task_id = ?`, taskID); err != nil {
			return fmt.Errorf("clear logs of task %s: %w", taskID, err)
		}
		return nil
	})
}

// QueuedTasks counts userID's queued tasks.
func (db *DB) QueuedTasks(ctx context.Context, userID string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM tasks WHERE user_id = ? AND status = 'queued'`, userID).Scan(&n)
	if err != nil {
		return 0, db.unavailable(db.read, fmt.Errorf("count queued tasks: %w", err))
	}
	return n, nil
}
