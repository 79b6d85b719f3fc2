package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envvault/envvault/vault"
)

// Tasks that wait for secrets (issue 13 item 2). At its start, a task whose
// profile requires a name that nothing gives (MissingRequired over the
// preview) does not start: it joins or opens its profile's secret request
// (vault.OpenSecretRequest: one pending request per profile) and waits in
// StatusAwaitingSecrets. The trigger that releases it: at every poll the
// worker reads the pending requests of every user (one indexed query) and,
// for each, what its profile would receive now (one ProfileSecrets, as a
// start does); a request whose names all have a value, by any route (its
// answer, POST /v1/secrets, an import, the profile's env), is closed and
// its waiting tasks go back to the queue, where the next claim starts them
// with the full env. No secret write path knows about tasks. The same pass
// expires the requests whose time is up and fails their tasks, naming the
// names. The cost is bounded by the pending requests (MaxPendingChecked a
// poll), not by the tasks waiting on them.

// MaxPendingChecked is how many pending requests a worker checks at each
// poll (the oldest first).
const MaxPendingChecked = 200

// errAwaiting says a start found names missing and left the task waiting:
// not a failure.
var errAwaiting = errors.New("task awaits secrets")

// awaitSecrets checks, before a start, that p gives a value to every name
// it requires; if not, it opens (or joins) the profile's secret request and
// moves the task to StatusAwaitingSecrets, and returns errAwaiting.
func (o *Orchestrator) awaitSecrets(ctx context.Context, t *Task, p *vault.Profile) error {
	if len(p.RequiredSecrets) == 0 {
		return nil
	}
	secrets, err := o.vault.ProfileSecrets(ctx, t.UserID, t.ProfileID)
	if err != nil {
		return fmt.Errorf("read secrets: %w", err)
	}
	missing := MissingRequired(p, Preview(o.baseline, p.Env, secrets))
	if len(missing) == 0 {
		return nil
	}
	var names []vault.RequiredSecret
	for _, r := range p.RequiredSecrets {
		if slices.Contains(missing, r.Name) {
			names = append(names, r)
		}
	}
	req, err := o.vault.OpenSecretRequest(ctx, t.UserID, t.ProfileID, t.ID, names, o.requestTTL)
	if err != nil {
		return fmt.Errorf("open secret request: %w", err)
	}
	_, err = o.store.UpdateTask(context.WithoutCancel(ctx), t.ID, func(cur *Task) error {
		cur.Status, cur.Worker, cur.UpdatedAt = StatusAwaitingSecrets, "", o.timestamp()
		cur.Error = "awaiting secrets: " + strings.Join(missing, ", ")
		return nil
	})
	if err != nil {
		return fmt.Errorf("record awaiting secrets: %w", err)
	}
	o.log.Info("task awaits secrets", "task", t.ID, "request", req.ID, "names", missing)
	o.notify()
	return errAwaiting
}

// awaitingView adds to v, a task awaiting secrets, the pending request of
// its profile: what it waits for. No pending request (answered or ended a
// moment ago, the task about to move on) leaves v as it is.
func (o *Orchestrator) awaitingView(ctx context.Context, v *TaskView) (*TaskView, error) {
	r, err := o.vault.PendingSecretRequestOf(ctx, v.UserID, v.ProfileID)
	if vault.ErrorCode(err) == vault.ENOTFOUND {
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read what task %s waits for: %w", v.ID, err)
	}
	v.Request = r
	return v, nil
}

// checkAwaiting releases the tasks of pending requests whose names all have
// a value now, and ends those whose time is up.
func (o *Orchestrator) checkAwaiting(ctx context.Context) {
	// Once a poll interval at most: the loop also runs after every wake
	// (a task queued, a slot freed), which would repeat the reads.
	now := time.Now()
	if now.Sub(o.awaitChecked) < o.poll {
		return
	}
	o.awaitChecked = now
	due, err := o.vault.DueSecretRequests(ctx, MaxPendingChecked)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("read due secret requests", "err", err)
		}
		return
	}
	for _, r := range due {
		o.expireRequest(ctx, r)
	}
	pending, err := o.vault.PendingSecretRequests(ctx, MaxPendingChecked)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("read pending secret requests", "err", err)
		}
		return
	}
	for _, r := range pending {
		o.releaseIfSatisfied(ctx, r)
	}
}

// releaseIfSatisfied closes r and queues its waiting tasks again once its
// profile gives every name r asks for.
func (o *Orchestrator) releaseIfSatisfied(ctx context.Context, r *vault.SecretRequest) {
	p, secrets, err := o.profileSecrets(ctx, r.UserID, r.ProfileID)
	if vault.ErrorCode(err) == vault.ENOTFOUND {
		return // the profile is gone: the request expires, its tasks fail then
	} else if err != nil {
		if ctx.Err() == nil {
			o.log.Error("read secrets of a secret request", "request", r.ID, "err", err)
		}
		return
	}
	asked := &vault.Profile{Env: p.Env, RequiredSecrets: r.Names}
	if len(MissingRequired(asked, Preview(o.baseline, p.Env, secrets))) > 0 {
		return
	}
	// An answer through the API has closed it already: only its tasks
	// remain to queue.
	if _, err := o.vault.SatisfySecretRequest(ctx, r.UserID, r.ID); err != nil && vault.ErrorCode(err) != vault.ECONFLICT {
		o.log.Error("close satisfied secret request", "request", r.ID, "err", err)
		return
	}
	o.endWaiting(ctx, r.TaskIDs, func(t *Task) { t.Status, t.Error = StatusQueued, "" })
	o.restartAsking(ctx, r) // task_credential.go
	o.kick()
}

// ReleaseAnswered queues again the waiting tasks of a request just
// answered through the API (vault.AnswerSecretRequest), so that the next
// claim starts them, and restarts the running tasks that asked on it
// (task_credential.go). A task whose profile still misses a name (an answer
// may give only some) opens a new request at that start.
func (o *Orchestrator) ReleaseAnswered(ctx context.Context, r *vault.SecretRequest) {
	o.endWaiting(ctx, r.TaskIDs, func(t *Task) { t.Status, t.Error = StatusQueued, "" })
	o.restartAsking(ctx, r)
	o.kick()
}

// expireRequest ends a request whose time is up and fails its waiting
// tasks, naming the names.
func (o *Orchestrator) expireRequest(ctx context.Context, r *vault.SecretRequest) {
	if _, err := o.vault.ExpireSecretRequest(ctx, r.UserID, r.ID); err != nil {
		if vault.ErrorCode(err) != vault.ECONFLICT && ctx.Err() == nil {
			o.log.Error("expire secret request", "request", r.ID, "err", err)
		}
		return
	}
	reason := fmt.Sprintf("secret request %s expired: no value was given for %s", r.ID, strings.Join(vault.RequiredNames(r.Names), ", "))
	n := o.endWaiting(ctx, r.TaskIDs, func(t *Task) {
		now := o.timestamp()
		t.Status, t.Error, t.FinishedAt = StatusFailed, reason, &now
	})
	for range n {
		o.observe.TaskFinished(string(StatusFailed))
	}
}

// CancelWaiting ends the waiting tasks of a cancelled request: cancelled.
func (o *Orchestrator) CancelWaiting(ctx context.Context, r *vault.SecretRequest) {
	n := o.endWaiting(ctx, r.TaskIDs, func(t *Task) {
		now := o.timestamp()
		t.Status, t.Error, t.FinishedAt = StatusCancelled, "its secret request "+r.ID+" was cancelled", &now
	})
	for range n {
		o.observe.TaskFinished(string(StatusCancelled))
	}
}

// endWaiting applies change to each of ids still awaiting secrets, and
// returns how many it changed.
func (o *Orchestrator) endWaiting(ctx context.Context, ids []string, change func(*Task)) int {
	changed := 0
	for _, id := range ids {
		ended := false
		_, err := o.store.UpdateTask(ctx, id, func(t *Task) error {
			ended = t.Status == StatusAwaitingSecrets
			if ended {
				change(t)
				t.UpdatedAt = o.timestamp()
			}
			return nil
		})
		switch {
		case err == nil && ended:
			changed++
		case err != nil && vault.ErrorCode(err) != vault.ENOTFOUND:
			o.log.Error("end waiting task", "task", id, "err", err)
		}
	}
	o.notify()
	return changed
}
