package orchestrator

import (
	"context"
	"fmt"
	"strings"

	"github.com/envvault/envvault/vault"
)

// Pushing changed secrets to running tasks (issue 13 item 4). A profile
// with on_secret_change "restart" has its running tasks restarted with the
// fresh env when a secret they were given changes or is deleted. The check
// rides on the worker's poll (checkRequests, every Config.Poll, 500 ms by
// default): for each running task of this worker whose profile asks for
// restarts, it compares the task's env sources with what the profile would
// get now (staleNames, the same comparison as a task's `stale`). Its cost
// is two reads per such task per poll, bounded by --max-running; no
// secret write path knows about tasks. A burst of changes makes one
// restart: once requested, the task is not running until its next attempt
// starts, and that attempt reads every change made meanwhile. The same pass
// restarts such a task when an OAuth2 access token it was given nears its
// end (restartExpiring, vault.OAuth2Due): the next attempt's release gets a
// fresh one; a running container's env is never changed.

// restartChanged requests a restart of every running task of active whose
// profile asks for it and whose secrets changed.
func (o *Orchestrator) restartChanged(ctx context.Context, active []*Task) {
	policy := map[string]string{} // profile id -> on_secret_change, for this pass
	for _, t := range active {
		if t.Status != StatusRunning || t.StopRequested || t.RestartRequested {
			continue
		}
		on, ok := policy[t.ProfileID]
		if !ok {
			p, err := o.vault.Profile(ctx, t.UserID, t.ProfileID)
			if err != nil {
				if vault.ErrorCode(err) != vault.ENOTFOUND && ctx.Err() == nil {
					o.log.Error("read profile for secret changes", "task", t.ID, "err", err)
				}
				continue // a deleted profile restarts nothing: its next start would fail
			}
			on = p.OnSecretChange
			policy[t.ProfileID] = on
		}
		if on != vault.OnSecretChangeRestart {
			continue
		}
		current, err := o.vault.ProfileSecrets(ctx, t.UserID, t.ProfileID)
		if err != nil {
			if ctx.Err() == nil {
				o.log.Error("read secrets for secret changes", "task", t.ID, "err", err)
			}
			continue
		}
		if stale := staleNames(t.EnvSources, current, o.baseline.Locked); len(stale) > 0 {
			o.pushRestart(ctx, t, stale, "these secrets changed")
			continue
		}
		o.restartExpiring(ctx, t)
	}
}

// restartExpiring requests a restart of a running task of a restart
// profile whose OAuth2 access tokens near their end (vault.OAuth2Due): its
// next attempt gets fresh ones. Tokens are never pushed into a running
// container.
func (o *Orchestrator) restartExpiring(ctx context.Context, t *Task) {
	if t.StartedAt == nil {
		return
	}
	due, err := o.vault.OAuth2Due(ctx, t.UserID, t.ProfileID, *t.StartedAt)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("read oauth2 tokens for secret changes", "task", t.ID, "err", err)
		}
		return
	}
	if len(due) > 0 {
		o.pushRestart(ctx, t, due, "the OAuth2 access tokens it was given near their expiry")
	}
}

// pushRestart records and requests the restart of a running task whose
// secrets of names changed, and marks the point in its logs.
func (o *Orchestrator) pushRestart(ctx context.Context, t *Task, names []string, why string) {
	log := o.log.With("task", t.ID, "user", t.UserID, "profile", t.ProfileID)
	if err := o.vault.RecordPushRestart(ctx, t.UserID, t.ID, t.ProfileID, t.Attempt, names); err != nil {
		if ctx.Err() == nil {
			log.Error("record push restart", "err", err)
		}
		return // no record, no restart; the next poll tries again
	}
	requested := false
	_, err := o.store.UpdateTask(ctx, t.ID, func(cur *Task) error {
		// A stop or restart asked meanwhile, or another attempt, wins.
		if cur.Status != StatusRunning || cur.Attempt != t.Attempt || cur.StopRequested {
			return nil
		}
		cur.StopRequested, cur.RestartRequested, cur.UpdatedAt = true, true, o.timestamp()
		requested = true
		return nil
	})
	if err != nil {
		log.Error("request push restart", "err", err)
		return
	}
	if !requested {
		return
	}
	marker := fmt.Sprintf("\n--- envvault: restarting (attempt %d) because %s: %s ---\n", t.Attempt+1, why, strings.Join(names, ", "))
	if err := o.store.AppendTaskLog(ctx, t.ID, []byte(marker)); err != nil {
		log.Error("mark push restart in logs", "err", err)
	}
	log.Info("restart task: "+why, "names", names, "attempt", t.Attempt)
	o.notify()
	o.signal(t.ID)
}
