// Package orchestrator owns a task's life: it queues a task, lets a worker
// claim it, builds its env (baseline, profile, vault secrets), starts its
// container through a Backend (backend.go; dockerbackend on Docker), stores
// its masked logs, and recovers what a crash left behind. The API calls
// it; it calls its Backend; it knows no container engine.
package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/envvault/envvault/vault"
)

// MaxPromptLen is the largest prompt a task takes: it travels as the env
// variable TASK_PROMPT.
const MaxPromptLen = 64 << 10

// Config builds an Orchestrator.
type Config struct {
	Vault *vault.Service
	Store Store
	// Runner is the engine tasks run on (dockerbackend on Docker); nil:
	// tasks are queued for other processes' workers.
	Runner   Backend
	Baseline Baseline
	// Worker names this process's worker; recovery reconciles the tasks
	// it claimed. The host name if "".
	Worker string
	Logger *slog.Logger
	// Poll is how often the worker looks for queued tasks and stop
	// requests written by other processes; 500ms if 0. Tasks queued in
	// this process wake the worker at once.
	Poll time.Duration
	// MaxRunning is how many tasks the worker starts or runs at once;
	// DefaultMaxRunning() if 0. Further tasks wait queued (slots.go).
	MaxRunning int
	// UserSharePercent is the share of MaxRunning one user's tasks may
	// hold (at least one task); DefaultUserSharePercent if 0.
	UserSharePercent int
	// MaxQueuedPerUser is how many queued tasks one user may have;
	// DefaultMaxQueuedPerUser if 0. CreateTask refuses more (ELIMIT).
	MaxQueuedPerUser int
	// Observer is told what the worker measures (observe.go); nil tells
	// no one.
	Observer Observer
	// SecretRequestTTL is how long a secret request opened for a task
	// waits for its answer before its tasks fail (awaiting.go);
	// vault.DefaultSecretRequestTTL if 0.
	SecretRequestTTL time.Duration
	// TaskAPIURL is the API's URL as task containers reach it: given, each
	// start gives the container a task credential and this URL
	// (task_credential.go); "" gives neither.
	TaskAPIURL string
	// TaskCredentialTTL bounds a task credential's life;
	// vault.DefaultTaskCredentialTTL if 0.
	TaskCredentialTTL time.Duration
	// MaxLogBytes is how much of one container's output (masked) is
	// stored; DefaultMaxLogBytes if 0 (logs.go).
	MaxLogBytes int64
}

// Orchestrator creates, runs, observes, stops and recovers tasks.
type Orchestrator struct {
	vault    *vault.Service
	store    Store
	runner   Backend
	baseline Baseline
	worker   string
	log      *slog.Logger
	poll     time.Duration
	now      func() time.Time
	observe  Observer

	maxQueued     int
	requestTTL    time.Duration
	taskAPIURL    string        // task_credential.go
	credentialTTL time.Duration // task_credential.go
	maxLogBytes   int64         // logs.go
	// awaitChecked is when the worker's loop last ran checkAwaiting
	// (awaiting.go); only that goroutine reads or writes it.
	awaitChecked time.Time
	slots        slots // guarded by mu

	wake chan struct{} // a task was queued here

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when any task or log changes
	running map[string]chan struct{}
	// unconfirmed holds the tasks recovery attached to whose start no
	// worker recorded: their init may not have got the env (leftovers.go,
	// neverRan).
	unconfirmed map[string]bool
	wg          sync.WaitGroup
}

// New returns an orchestrator. Call Run to start its worker.
func New(c Config) *Orchestrator {
	o := &Orchestrator{
		vault: c.Vault, store: c.Store, runner: c.Runner, baseline: c.Baseline,
		worker: c.Worker, log: c.Logger, poll: c.Poll, now: time.Now, observe: observerOr(c.Observer),
		wake: make(chan struct{}, 1), changed: make(chan struct{}), running: map[string]chan struct{}{},
		unconfirmed: map[string]bool{},
		maxQueued:   c.MaxQueuedPerUser, slots: newSlots(c.MaxRunning, c.UserSharePercent),
		requestTTL: c.SecretRequestTTL, taskAPIURL: c.TaskAPIURL, credentialTTL: c.TaskCredentialTTL,
		maxLogBytes: c.MaxLogBytes,
	}
	if o.maxLogBytes <= 0 {
		o.maxLogBytes = DefaultMaxLogBytes
	}
	if o.maxQueued <= 0 {
		o.maxQueued = DefaultMaxQueuedPerUser
	}
	if o.worker == "" {
		o.worker, _ = os.Hostname()
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.poll <= 0 {
		o.poll = 500 * time.Millisecond
	}
	return o
}

func (o *Orchestrator) timestamp() time.Time { return o.now().UTC().Truncate(time.Microsecond) }

// notify wakes everyone waiting for a change of a task or its logs.
func (o *Orchestrator) notify() {
	o.mu.Lock()
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

// Changes returns a channel that is closed at the next change this
// process makes to any task or its logs (a claim, a start, a log chunk, an
// end). It is a wake-up, not a message: a waiter takes the channel, reads
// the store, and waits on the channel only if what it read does not yet
// satisfy it. Changes made by other processes are not signalled.
func (o *Orchestrator) Changes() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// CreateTask queues a task on the user's profile. Returns EINVALID if the
// profile is not the user's or the prompt breaks a rule, ELIMIT if the
// user has MaxQueuedPerUser tasks queued.
func (o *Orchestrator) CreateTask(ctx context.Context, userID, profileID, prompt string) (*Task, error) {
	if profileID == "" {
		return nil, vault.Invalid("profile_id", "is required")
	}
	if len(prompt) > MaxPromptLen || !utf8.ValidString(prompt) || strings.IndexByte(prompt, 0) >= 0 {
		return nil, vault.Invalid("prompt", "must be valid UTF-8 of at most %d bytes without NUL bytes", MaxPromptLen)
	}
	now := o.timestamp()
	t := &Task{
		ID: vault.NewID(vault.PrefixTask), UserID: userID, ProfileID: profileID, Prompt: prompt,
		Status: StatusQueued, Attempt: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := o.insertQueued(ctx, t); err != nil {
		switch vault.ErrorCode(err) {
		case vault.ENOTFOUND:
			return nil, vault.Invalid("profile_id", "is not one of your profiles")
		case vault.ELIMIT:
			return nil, err
		}
		return nil, fmt.Errorf("create task: %w", err)
	}
	o.notify()
	o.kick()
	return t, nil
}

func (o *Orchestrator) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// TaskView is a task as its user sees it.
type TaskView struct {
	*Task
	// Stale lists, for a running task, the names whose secret changed
	// (value, scope or existence) since its container started.
	Stale []string
	// Request is, for a task awaiting secrets, the pending secret request
	// of its profile it waits on (awaiting.go): its Names are what the task
	// misses. nil otherwise, and in the moment between an answer and the
	// task being queued again.
	Request *vault.SecretRequest
}

// Task returns a task of the user with its staleness. Returns ENOTFOUND if
// it does not exist.
func (o *Orchestrator) Task(ctx context.Context, userID, id string) (*TaskView, error) {
	t, err := o.store.Task(ctx, userID, id)
	if err != nil {
		return nil, fmt.Errorf("read task %s: %w", id, err)
	}
	return o.view(ctx, t)
}

func (o *Orchestrator) view(ctx context.Context, t *Task) (*TaskView, error) {
	v := &TaskView{Task: t}
	if t.Status == StatusAwaitingSecrets {
		return o.awaitingView(ctx, v)
	}
	if t.Status != StatusRunning {
		return v, nil
	}
	current, err := o.vault.ProfileSecrets(ctx, t.UserID, t.ProfileID)
	if vault.ErrorCode(err) == vault.ENOTFOUND {
		current = nil // the profile is gone: every secret it had is stale
	} else if err != nil {
		return nil, fmt.Errorf("read secrets of task %s: %w", t.ID, err)
	}
	v.Stale = staleNames(t.EnvSources, current, o.baseline.Locked)
	return v, nil
}

// staleNames compares the secrets a container started with to those its
// profile would get now, and returns the names that differ, sorted.
func staleNames(started []EnvSource, now []vault.EnvSecret, locked []string) []string {
	had := map[string]EnvSource{}
	for _, s := range started {
		if s.Source == SourceSecret {
			had[s.Name] = s
		}
	}
	var stale []string
	for _, s := range now {
		if slices.Contains(locked, s.Name) {
			continue
		}
		h, ok := had[s.Name]
		if !ok || h.SecretID != s.SecretID || h.Version != s.Version {
			stale = append(stale, s.Name)
		}
		delete(had, s.Name)
	}
	for name := range had {
		stale = append(stale, name)
	}
	slices.Sort(stale)
	return stale
}

// Tasks lists the user's tasks, newest first.
func (o *Orchestrator) Tasks(ctx context.Context, userID string, opts vault.ListOptions) (vault.Page[*TaskView], error) {
	f, err := opts.Filter()
	if err != nil {
		return vault.Page[*TaskView]{}, err
	}
	f.Limit++
	list, err := o.store.Tasks(ctx, userID, f)
	if err != nil {
		return vault.Page[*TaskView]{}, fmt.Errorf("list tasks: %w", err)
	}
	views := make([]*TaskView, 0, len(list))
	for _, t := range list {
		v, err := o.view(ctx, t)
		if err != nil {
			return vault.Page[*TaskView]{}, err
		}
		views = append(views, v)
	}
	return vault.NewPage(views, f.Limit-1, func(v *TaskView) vault.Cursor { return TaskCursor(v.Task) }), nil
}

// TaskCursor is the position of a task in the newest-first list.
func TaskCursor(t *Task) vault.Cursor {
	return vault.Cursor{Key: fmt.Sprintf("%020d", t.CreatedAt.UnixMicro()), ID: t.ID}
}

// StopTask stops a task: a queued one at once, a running one by its
// worker, wherever it runs. Stopping a finished task changes nothing.
// Returns ENOTFOUND if it does not exist.
func (o *Orchestrator) StopTask(ctx context.Context, userID, id string) (*TaskView, error) {
	return o.request(ctx, userID, id, "stop", func(t *Task) {
		switch {
		case t.Status == StatusQueued, t.Status == StatusAwaitingSecrets:
			t.Status, t.FinishedAt = StatusStopped, ptr(o.timestamp())
		case !t.Status.Done():
			t.StopRequested = true
		}
		t.RestartRequested = false
	})
}

// RestartTask replaces a task's container with a fresh one that gets the
// current env: a finished task is queued again at once, a running one
// after its worker has stopped its container. Returns ENOTFOUND if it does
// not exist.
func (o *Orchestrator) RestartTask(ctx context.Context, userID, id string) (*TaskView, error) {
	v, err := o.request(ctx, userID, id, "restart", func(t *Task) {
		switch {
		case t.Status.Done():
			requeue(t)
		case t.Status == StatusQueued, t.Status == StatusAwaitingSecrets:
		default:
			t.StopRequested, t.RestartRequested = true, true
		}
	})
	if err == nil {
		o.kick()
	}
	return v, err
}

// request applies a user's stop or restart request (verb) to their task,
// and wakes the worker that runs it. Returns ENOTFOUND if the task is not
// the user's.
func (o *Orchestrator) request(ctx context.Context, userID, id, verb string, change func(*Task)) (*TaskView, error) {
	if _, err := o.store.Task(ctx, userID, id); err != nil {
		return nil, fmt.Errorf("%s task %s: %w", verb, id, err)
	}
	t, err := o.store.UpdateTask(ctx, id, func(t *Task) error {
		change(t)
		t.UpdatedAt = o.timestamp()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s task %s: %w", verb, id, err)
	}
	o.notify()
	o.signal(id)
	return o.view(ctx, t)
}

// requeue makes a task a fresh attempt.
func requeue(t *Task) {
	t.Status, t.Attempt = StatusQueued, t.Attempt+1
	t.ExitCode, t.ContainerID, t.Error, t.Worker = nil, "", "", ""
	t.StopRequested, t.RestartRequested = false, false
	t.StartedAt, t.FinishedAt = nil, nil
	t.Sandbox = nil
}

// signal tells this process's worker, if it runs the task, to look at its
// stop and restart requests now rather than at the next poll.
func (o *Orchestrator) signal(id string) {
	o.mu.Lock()
	c := o.running[id]
	o.mu.Unlock()
	if c != nil {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func ptr[T any](v T) *T { return &v }
