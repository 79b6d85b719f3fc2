package orchestrator

import (
	"context"
	"errors"
	"log/slog"
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
		log.Info("removed the container of a task that is over, left behind by a worker that stopped before it removed it")
	}
}
