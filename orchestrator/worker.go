package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/envvault/envvault/vault"
)

// Run is the worker: it reconciles what a crash left behind, then claims
// queued tasks and runs them until ctx ends. Tasks still running then keep
// running; the next Run attaches to them again.
func (o *Orchestrator) Run(ctx context.Context) error {
	if o.runner == nil {
		return errors.New("orchestrator: no runner: this process cannot run tasks")
	}
	if err := o.recover(ctx); err != nil {
		return fmt.Errorf("recover tasks: %w", err)
	}
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	for {
		for {
			t, err := o.claim(ctx)
			if vault.ErrorCode(err) == vault.ENOTFOUND {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				o.log.Error("claim task", "err", err)
				break
			}
			o.notify()
			o.goRun(ctx, t, nil)
		}
		o.checkRequests(ctx)
		o.checkAwaiting(ctx) // awaiting.go
		select {
		case <-ctx.Done():
			o.wg.Wait()
			return nil
		case <-o.wake:
		case <-tick.C:
		}
	}
}

// goRun runs a claimed task in its own goroutine. attach, if not nil, is
// the container recovery found still there.
func (o *Orchestrator) goRun(ctx context.Context, t *Task, attach *Container) {
	c := make(chan struct{}, 1)
	o.mu.Lock()
	if _, busy := o.running[t.ID]; busy && attach != nil {
		// A retried recovery finds a container this process already
		// follows: attaching twice would store its logs twice.
		o.mu.Unlock()
		return
	}
	o.running[t.ID] = c
	o.slots.take(t.UserID)
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer func() {
			o.mu.Lock()
			// A restart may have queued and claimed the task again while
			// this run was removing its old container: the entry is then
			// the new run's.
			if o.running[t.ID] == c {
				delete(o.running, t.ID)
				delete(o.unconfirmed, t.ID)
			}
			o.slots.give(t.UserID)
			o.mu.Unlock()
			o.kick() // a slot is free
		}()
		o.runTask(ctx, t, attach, c)
	}()
}

// checkRequests pokes the goroutines of this worker's tasks whose stop was
// requested through another process, and restarts those whose secrets
// changed if their profile asks for it (push.go).
func (o *Orchestrator) checkRequests(ctx context.Context) {
	o.mu.Lock()
	n := len(o.running)
	o.mu.Unlock()
	if n == 0 {
		return
	}
	active, err := o.store.ActiveTasks(ctx, o.worker)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("read active tasks", "err", err)
		}
		return
	}
	for _, t := range active {
		if t.StopRequested {
			o.signal(t.ID)
		}
	}
	o.restartChanged(ctx, active) // push.go
}

// runTask takes a claimed task to a final status (or leaves it running if
// ctx ends first, for the next Run to attach to).
func (o *Orchestrator) runTask(ctx context.Context, t *Task, attach *Container, poke <-chan struct{}) {
	log := o.log.With("task", t.ID, "user", t.UserID, "profile", t.ProfileID)
	containerID, masked, ok := o.attachOrStart(ctx, t, attach, log)
	if !ok {
		return
	}
	o.supervise(ctx, t, containerID, masked, poke, log.With("container", containerID))
}

// attachOrStart returns the task's container and the values to mask in its
// logs: attach, the container found running after a restart of envvault,
// or else a container it starts. It returns false once it has failed the
// task, or if ctx ended first.
func (o *Orchestrator) attachOrStart(ctx context.Context, t *Task, attach *Container, log *slog.Logger) (string, []string, bool) {
	if attach == nil {
		id, values, err := o.start(ctx, t)
		if errors.Is(err, errAwaiting) {
			return "", nil, false // waiting for secrets, not failed (awaiting.go)
		}
		if err != nil {
			// Shutting down mid-start: the task stays starting, and the
			// next Run's recovery attaches to its container, or queues it
			// again if it never started.
			if ctx.Err() == nil {
				o.fail(t.ID, id, err.Error(), log)
			}
			return "", nil, false
		}
		return id, values, true
	}
	values, err := o.reattachMasks(ctx, t, attach.ID, log)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, false // shutting down: the next Run attaches again
		}
		o.fail(t.ID, "", err.Error(), log)
		o.remove(attach.ID, log)
		return "", nil, false
	}
	if err := o.store.ClearTaskLogs(ctx, t.ID); err != nil {
		log.Error("clear logs for reattach", "err", err)
	}
	return attach.ID, values, true
}

// supervise stores the container's masked logs, stops it when the task is
// asked to stop, and records how it ended.
func (o *Orchestrator) supervise(ctx context.Context, t *Task, containerID string, masked []string, poke <-chan struct{}, log *slog.Logger) {
	// Logs are read until the container exits; their reader ends then.
	logsDone := make(chan error, 1)
	ended := make(chan struct{}) // closed once the wait below returns
	go func() { logsDone <- o.storeLogs(ctx, t.ID, containerID, masked, ended) }()

	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	exited := make(chan waitResult, 1)
	go func() {
		code, err := o.runner.Wait(waitCtx, containerID)
		exited <- waitResult{code, err}
		close(ended)
	}()
	var res waitResult
	stopping := false
wait:
	for {
		select {
		case res = <-exited:
			break wait
		case <-poke:
			cur, err := o.store.Task(ctx, t.UserID, t.ID)
			if err == nil && cur.StopRequested && !stopping {
				stopping = true
				go func() {
					if err := o.runner.Stop(context.WithoutCancel(ctx), containerID, 0); err != nil {
						log.Error("stop container", "err", err)
					}
				}()
			}
		case <-ctx.Done():
			// Shutting down: the container keeps running. The log reader
			// ends with ctx; wait for its last write, so that nothing of
			// this run reaches the store after Run has returned (the next
			// Run clears the logs and reads them again from the start).
			<-logsDone
			return
		}
	}
	if err := <-logsDone; err != nil && ctx.Err() == nil {
		log.Error("store logs", "err", err)
	}
	if ctx.Err() != nil {
		return
	}
	if res.err != nil {
		o.fail(t.ID, containerID, "container lost: "+res.err.Error(), log)
		return
	}
	if o.requeueNeverRan(ctx, t, containerID, log) { // leftovers.go
		return
	}
	o.finish(t.ID, res.code, log)
	o.remove(containerID, log)
}

type waitResult struct {
	code int
	err  error
}

// start builds the task's env and starts its container. It returns the
// values to mask in its logs. Its errors are safe to show the user.
func (o *Orchestrator) start(ctx context.Context, t *Task) (containerID string, masked []string, err error) {
	p, err := o.vault.Profile(ctx, t.UserID, t.ProfileID)
	if err != nil {
		if vault.ErrorCode(err) == vault.ENOTFOUND {
			return "", nil, errors.New("the task's profile was deleted")
		}
		return "", nil, fmt.Errorf("read profile: %w", err)
	}
	// A required name without a value: the task waits (awaiting.go).
	if err := o.awaitSecrets(ctx, t, p); err != nil {
		return "", nil, err
	}
	// Checked again at every start: the operator's limits may have been
	// lowered since the profile was saved.
	sandbox, err := o.vault.SandboxSettings(p)
	if err != nil {
		var ve *vault.Error
		if errors.As(err, &ve) {
			return "", nil, fmt.Errorf("not started: the profile's %s %s", ve.Field, ve.Message)
		}
		return "", nil, fmt.Errorf("not started: %w", err)
	}
	// The release is recorded in the audit trail before any value leaves
	// the vault, once per start: no record, no start.
	secrets, err := o.vault.ReleaseForTask(ctx, t.UserID,
		vault.TaskRelease{TaskID: t.ID, ProfileID: t.ProfileID, Attempt: t.Attempt})
	if err != nil {
		if errors.Is(err, vault.ErrDecrypt) || errors.Is(err, vault.ErrOAuth2) {
			// The message names the secret and says nothing else (for
			// OAuth2: why no valid access token could be had).
			return "", nil, fmt.Errorf("not started: %w", err)
		}
		return "", nil, fmt.Errorf("read secrets: %w", err)
	}
	// The attempt's task credential (task_credential.go) expires after a
	// bound counted from the start recorded below.
	now := o.timestamp()
	token := o.issueCredential(t, now)
	env, envSources := Merge(MergeInput{
		Baseline: o.baseline, Profile: p.Env, Secrets: secrets,
		TaskID: t.ID, Prompt: t.Prompt, TaskToken: token, TaskAPIURL: o.taskAPIURL,
	})
	masked = maskable(secrets, o.baseline.Env)
	if token != "" {
		masked = append(masked, token)
	}
	// The container's name makes a second start of one attempt fail
	// rather than run twice.
	id, err := o.startOver(ctx, Spec{ // leftovers.go
		TaskID: t.ID, UserID: t.UserID, ProfileID: t.ProfileID, Name: ContainerName(t.ID, t.Attempt),
		Image: p.Image, Command: p.Command, SetupCommands: p.SetupCommands, Env: env,
		Sandbox: *sandbox,
	})
	if err != nil {
		return "", nil, fmt.Errorf("start container: %w", err)
	}
	_, err = o.store.UpdateTask(context.WithoutCancel(ctx), t.ID, func(cur *Task) error {
		cur.Status, cur.ContainerID, cur.EnvSources, cur.Sandbox = StatusRunning, id, envSources, sandbox
		cur.StartedAt, cur.UpdatedAt = &now, now
		return nil
	})
	if err != nil {
		o.remove(id, o.log)
		return "", nil, fmt.Errorf("record start: %w", err)
	}
	if t.Attempt <= 1 {
		o.observe.TaskStarted(now.Sub(t.CreatedAt))
	}
	o.notify()
	return id, masked, nil
}

// finish records how a task's container ended. A restart request queues
// the task again; a stop request makes it stopped.
func (o *Orchestrator) finish(id string, code int, log interface{ Error(string, ...any) }) {
	done, err := o.store.UpdateTask(context.Background(), id, func(t *Task) error {
		now := o.timestamp()
		if t.RestartRequested {
			requeue(t)
			t.UpdatedAt = now
			return nil
		}
		t.ExitCode, t.FinishedAt, t.UpdatedAt = &code, &now, now
		switch {
		case t.StopRequested:
			t.Status = StatusStopped
		case code == 0:
			t.Status = StatusSucceeded
		default:
			t.Status, t.Error = StatusFailed, fmt.Sprintf("exited with code %d", code)
		}
		return nil
	})
	if err != nil {
		log.Error("record task end", "err", err)
	} else {
		o.observe.TaskFinished(string(done.Status))
	}
	o.notify()
	o.kick()
}

// fail records that a task could not run, and why.
func (o *Orchestrator) fail(id, containerID, reason string, log interface{ Error(string, ...any) }) {
	_, err := o.store.UpdateTask(context.Background(), id, func(t *Task) error {
		now := o.timestamp()
		t.Status, t.Error, t.FinishedAt, t.UpdatedAt = StatusFailed, reason, &now, now
		if containerID != "" {
			t.ContainerID = containerID
		}
		return nil
	})
	if err != nil {
		log.Error("record task failure", "err", err)
	} else {
		o.observe.TaskFinished(string(StatusFailed))
	}
	o.notify()
}

func (o *Orchestrator) remove(containerID string, log interface{ Error(string, ...any) }) {
	if err := o.runner.Remove(context.Background(), containerID); err != nil {
		log.Error("remove container", "container", containerID, "err", err)
	}
}

// recover reconciles this worker's tasks with the containers on its
// engine: a running container is attached again, an exited one finished,
// a vanished one failed, and a task whose container was never started
// (none, or one created but not started) is queued again. Nothing is started twice: a container exists for an attempt only
// if its start was recorded or its name says so. Then it removes the
// containers of tasks that are over (removeLeftovers).
func (o *Orchestrator) recover(ctx context.Context) error {
	active, err := o.store.ActiveTasks(ctx, o.worker)
	if err != nil {
		return err
	}
	containers, err := o.runner.List(ctx)
	if err != nil {
		if len(active) == 0 {
			return nil // nothing to reconcile; leftovers wait for the next start
		}
		return err
	}
	byName := map[string]Container{}
	for _, c := range containers {
		byName[c.Name] = c
	}
	mine := map[string]bool{}
	for _, t := range active {
		mine[t.ID] = true
	}
	for _, t := range active {
		log := o.log.With("task", t.ID)
		c, found := byName[ContainerName(t.ID, t.Attempt)]
		switch {
		case !found && t.Status == StatusStarting, found && c.State == StateCreated,
			found && t.Status == StatusStarting && o.neverRan(ctx, c): // leftovers.go
			// No container, or one created but never started, or whose
			// init never got the env: this attempt never ran. Queue it
			// again; its name is free once the container is removed.
			if found {
				if err := o.runner.Remove(ctx, c.ID); err != nil {
					return err
				}
			}
			_, err := o.store.UpdateTask(ctx, t.ID, func(cur *Task) error {
				cur.Status, cur.Worker, cur.ContainerID, cur.UpdatedAt = StatusQueued, "", "", o.timestamp()
				return nil
			})
			if err != nil {
				return err
			}
			o.notify()
			log.Info("queue again a task that never started")
		case found:
			if t.Status == StatusStarting {
				// Started but not recorded: record it, then attach. If it
				// still runs, its init may be about to fail for want of the
				// env the dead worker was writing: supervise looks.
				if c.State == StateRunning {
					o.mu.Lock()
					o.unconfirmed[t.ID] = true
					o.mu.Unlock()
				}
				now := o.timestamp()
				_, err := o.store.UpdateTask(ctx, t.ID, func(cur *Task) error {
					cur.Status, cur.ContainerID, cur.StartedAt, cur.UpdatedAt = StatusRunning, c.ID, &now, now
					return nil
				})
				if err != nil {
					return err
				}
				o.notify() // a change as a start is (Changes)
			}
			if c.State == StateRunning {
				log.Info("reattach running task", "container", c.ID)
			} else {
				log.Info("collect task that exited while envvault was down", "container", c.ID)
			}
			o.goRun(ctx, t, &c)
		default:
			o.fail(t.ID, "", "its container was gone when envvault restarted", log)
		}
	}
	o.removeLeftovers(ctx, containers, mine) // leftovers.go
	return nil
}
