package orchestrator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/envvault/envvault/runner/envblock"
)

// errJustRead ends an UpdateTask that only reads: nothing is written.
var errJustRead = errors.New("orchestrator: task read, not updated")

// removeLeftovers removes the containers in list, other than those of
// this worker's tasks that recovery reconciled (skip), whose task is over
// or has moved on to a later attempt: what a worker killed between
// recording a task's end (or its restart) and removing its container
// leaves behind. Any worker on the same engine may remove them; the
// task's worker, if alive, may be removing the same container at the same
// moment, and removing a missing container is not an error. A container
// whose task this database does not know is left alone: it may be another
// envvault's on the same engine. Failures are logged, not returned:
// nothing depends on this clean-up.
func (o *Orchestrator) removeLeftovers(ctx context.Context, list []Container, skip map[string]bool) {
	for _, c := range list {
		if skip[c.TaskID] || c.TaskID == "" {
			continue
		}
		over := false
		_, err := o.store.UpdateTask(ctx, c.TaskID, func(t *Task) error {
			over = t.Status.Done() || c.Name != ContainerName(t.ID, t.Attempt)
			return errJustRead
		})
		if !errors.Is(err, errJustRead) {
			continue // unknown here (ENOTFOUND), or the store failed: leave it
		}
		if !over {
			continue
		}
		log := o.log.With(slog.String("task", c.TaskID), slog.String("container", c.ID))
		if err := o.runner.Remove(ctx, c.ID); err != nil {
			log.Error("remove the container of a task that is over", "err", err)
			continue
		}
		// Its worker may have died before removing it, or be removing it
		// now: the log cannot tell which.
		log.Info("removed the container of a task that is over")
	}
}

// startOver is Backend.Start, which, if it fails while a container of the
// attempt's name exists that was never started, removes that container
// and starts once more. A worker killed while its create request was in
// flight leaves one: the engine made it after the worker died, after the
// next worker's recovery had found no container and queued the task
// again, so the next start of the attempt found its name taken (seen
// under load by cmd/envvault's TestSeveralWorkersUnderLoad: "a container
// named … already exists"). Nobody starts it: the worker that asked for it
// is gone, and only the worker holding the task's claim starts the
// attempt. A container of the name that was started is left, and the
// start fails: that attempt may have run.
func (o *Orchestrator) startOver(ctx context.Context, spec Spec) (string, error) {
	id, err := o.runner.Start(ctx, spec)
	if err == nil {
		return id, nil
	}
	list, lerr := o.runner.List(ctx)
	if lerr != nil {
		return "", err
	}
	for _, c := range list {
		if c.Name != spec.Name || c.State != StateCreated {
			continue
		}
		if o.runner.Remove(ctx, c.ID) != nil {
			return "", err
		}
		o.log.Info("removed a container of this attempt made but never started (its worker died while creating it); starting again",
			"task", spec.TaskID, "container", c.ID)
		return o.runner.Start(ctx, spec)
	}
	return "", err
}

// requeueNeverRan queues again, at the same attempt, a task recovery
// attached to whose start no worker recorded (unconfirmed), if its
// container, now exited, never ran the command (neverRan): the dead worker
// was writing the env when it died, and the init read the end of stdin
// after recovery found it running. It removes the container and the
// init's line from the task's logs, and reports whether it did.
func (o *Orchestrator) requeueNeverRan(ctx context.Context, t *Task, containerID string, log interface{ Error(string, ...any) }) bool {
	o.mu.Lock()
	unconfirmed := o.unconfirmed[t.ID]
	delete(o.unconfirmed, t.ID)
	o.mu.Unlock()
	if !unconfirmed || !o.neverRan(ctx, Container{ID: containerID, State: StateExited}) {
		return false
	}
	if err := o.runner.Remove(ctx, containerID); err != nil {
		log.Error("remove container that never ran its command", "err", err)
		return false
	}
	if err := o.store.ClearTaskLogs(ctx, t.ID); err != nil {
		log.Error("clear logs of an attempt that never ran", "err", err)
	}
	_, err := o.store.UpdateTask(ctx, t.ID, func(cur *Task) error {
		cur.Status, cur.Worker, cur.ContainerID, cur.StartedAt, cur.UpdatedAt = StatusQueued, "", "", nil, o.timestamp()
		return nil
	})
	if err != nil {
		log.Error("queue again a task that never ran", "err", err)
		return false
	}
	o.notify()
	o.kick()
	o.log.Info("queue again a task whose init never got its env (its worker died while starting it)", "task", t.ID, "container", containerID)
	return true
}

// neverRan reports whether c, the exited container of a task whose start
// was not recorded, never ran the task's command: envvault-init (stdin
// delivery) ended it with envblock.ExitNoBlock, its own failure line the
// container's only output. A worker killed while it started the container
// leaves this: the engine carried out the start after the worker died,
// and the init read the end of stdin, closed with the worker's attach
// (seen under load by cmd/envvault's TestSeveralWorkersUnderLoad: the task
// failed with exit code 125 without running). Such an attempt is queued
// again, as one never started.
func (o *Orchestrator) neverRan(ctx context.Context, c Container) bool {
	if c.State != StateExited {
		return false
	}
	code, err := o.runner.Wait(ctx, c.ID)
	if err != nil || code != envblock.ExitNoBlock {
		return false
	}
	rc, err := o.runner.Logs(ctx, c.ID, false)
	if err != nil {
		return false
	}
	defer rc.Close()
	out, err := io.ReadAll(io.LimitReader(rc, 4<<10))
	if err != nil {
		return false
	}
	line, rest, _ := strings.Cut(string(out), "\n")
	return rest == "" && strings.HasPrefix(line, envblock.InitPrefix)
}
