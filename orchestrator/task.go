package orchestrator

import (
	"context"
	"time"

	"github.com/envvault/envvault/vault"
)

// Status is where a task is in its life.
type Status string

const (
	StatusQueued    Status = "queued"    // waiting for a worker
	StatusStarting  Status = "starting"  // claimed; its container is being made
	StatusRunning   Status = "running"   // its container runs
	StatusSucceeded Status = "succeeded" // exited 0
	StatusFailed    Status = "failed"    // exited non-zero, or could not start (see Error)
	StatusStopped   Status = "stopped"   // stopped by its user
	// StatusAwaitingSecrets: its profile lacks a value for a required
	// name; a secret request asks the user (awaiting.go).
	StatusAwaitingSecrets Status = "awaiting_secrets"
	// StatusCancelled: its secret request was cancelled.
	StatusCancelled Status = "cancelled"
)

// Done reports whether the status is final.
func (s Status) Done() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusStopped || s == StatusCancelled
}

// Task is one run of a profile's container with a prompt.
type Task struct {
	ID          string
	UserID      string
	ProfileID   string
	Prompt      string
	Status      Status
	ExitCode    *int
	ContainerID string
	Error       string      // why it failed; never contains a value
	EnvSources  []EnvSource // of the current container, sorted by name
	// Sandbox is what the current container got (limits, user, network);
	// nil until it starts.
	Sandbox *vault.SandboxSettings
	Worker  string // the worker that claimed it
	Attempt int    // 1, then +1 at every restart
	// StopRequested and RestartRequested are set by the API and acted on
	// by the worker that runs the task, wherever it is.
	StopRequested    bool
	RestartRequested bool
	CreatedAt        time.Time
	UpdatedAt        time.Time
	StartedAt        *time.Time
	FinishedAt       *time.Time
}

// LogChunk is a piece of a task's stored, masked output.
type LogChunk struct {
	Seq  int64
	Data []byte
}

// Store keeps tasks and their masked logs. postgres and sqlite implement
// it; the conformance suite in storetest runs on both.
type Store interface {
	// CreateTask inserts a queued task. Returns ENOTFOUND if its profile is
	// not its user's, ECONFLICT if its id is taken.
	CreateTask(ctx context.Context, t *Task) error
	// Task returns a task of userID. Returns ENOTFOUND if it does not exist
	// or is another user's.
	Task(ctx context.Context, userID, id string) (*Task, error)
	// Tasks lists up to f.Limit of userID's tasks newest first (f.Query is
	// ignored; f.After holds the TaskCursor of the last task of the previous
	// page). Returns EINVALID if f.After's Key is not a TaskCursor's.
	Tasks(ctx context.Context, userID string, f vault.ListFilter) ([]*Task, error)
	// ClaimTask moves the oldest queued task of a user not in skipUsers to
	// StatusStarting, claimed by worker, with UpdatedAt the store's current
	// time, and returns it. Concurrent claims, from any process, never
	// return the same task. Returns ENOTFOUND when no such task is queued.
	ClaimTask(ctx context.Context, worker string, skipUsers ...string) (*Task, error)
	// QueuedTasks counts userID's tasks in StatusQueued.
	QueuedTasks(ctx context.Context, userID string) (int, error)
	// UpdateTask reads a task under a row lock, lets fn change it, and
	// writes it back in the same transaction, unless fn fails, and returns
	// it as written. fn must not change ID, UserID, ProfileID, Prompt or
	// CreatedAt (an error if it does). Returns ENOTFOUND if it does not
	// exist, or fn's error.
	UpdateTask(ctx context.Context, id string, fn func(*Task) error) (*Task, error)
	// ActiveTasks returns the tasks in StatusStarting or StatusRunning
	// claimed by worker, and, if worker is "", by any worker.
	ActiveTasks(ctx context.Context, worker string) ([]*Task, error)
	// AppendTaskLog stores the next chunk of a task's masked output. Seqs
	// start at 1, grow, and are never reused, even after ClearTaskLogs; a
	// chunk becomes visible only after every chunk of a lower seq, so a
	// reader that has seen seq n misses nothing by asking for chunks after
	// n. Returns ENOTFOUND if the task does not exist.
	AppendTaskLog(ctx context.Context, taskID string, data []byte) error
	// TaskLogs returns the chunks of a task after seq, in order.
	TaskLogs(ctx context.Context, taskID string, afterSeq int64) ([]LogChunk, error)
	// ClearTaskLogs deletes a task's stored output.
	ClearTaskLogs(ctx context.Context, taskID string) error
}
