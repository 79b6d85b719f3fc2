package orchestrator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envvault/envvault/vault"
)

// A running task may ask too (issue 13 item 3). When the operator gives
// the URL at which containers reach the API (Config.TaskAPIURL), every
// start mints a task credential for the attempt (vault.IssueTaskCredential:
// stateless, signed, bound to the task, its user and attempt, expiring
// after Config.TaskCredentialTTL) and gives it to the container with the
// URL, as EnvTaskToken and EnvTaskAPIURL, through the same delivery as
// every value (stdin by default: never in docker inspect), masked in its
// logs. With it the agent lists its profile's secret keys and asks the
// user for names (AskSecrets); an answer restarts the task (restartAsking,
// attempt n+1, as a restart does). The credential is checked against the
// task at every use (LiveTask): it works only while its attempt is the
// task's current one and is starting or running.

// Names the task layer sets when the operator gives a task API URL; like
// TASK_ID, nothing overrides them.
const (
	EnvTaskToken  = "ENVVAULT_TASK_TOKEN"
	EnvTaskAPIURL = "ENVVAULT_URL"
)

// taskNames are the names every task receives from envvault itself: no
// secret or request gives them.
var taskNames = []string{"TASK_ID", "TASK_PROMPT", EnvTaskToken, EnvTaskAPIURL}

// issueCredential returns the credential of t's attempt that started at
// at, or "" when no task API URL is configured. The same task, attempt and
// at give the same credential (reattachMasks masks it again).
func (o *Orchestrator) issueCredential(t *Task, at time.Time) string {
	if o.taskAPIURL == "" {
		return ""
	}
	return o.vault.IssueTaskCredential(vault.TaskCredential{
		TaskID: t.ID, UserID: t.UserID, Attempt: t.Attempt, Expires: vault.TaskCredentialExpiry(at, o.credentialTTL),
	})
}

// LiveTask returns the task a credential names if the credential's attempt
// is the task's current one and is starting or running; otherwise
// vault.ErrTaskEnded (a task of another user is not found: ended too). It
// is the vault.TaskLiveness of the API.
func (o *Orchestrator) LiveTask(ctx context.Context, c vault.TaskCredential) (*Task, error) {
	t, err := o.store.Task(ctx, c.UserID, c.TaskID)
	if vault.ErrorCode(err) == vault.ENOTFOUND {
		return nil, vault.ErrTaskEnded
	} else if err != nil {
		return nil, fmt.Errorf("read task %s: %w", c.TaskID, err)
	}
	if t.Attempt != c.Attempt || (t.Status != StatusStarting && t.Status != StatusRunning) {
		return nil, vault.ErrTaskEnded
	}
	return t, nil
}

// AskSecrets records that running task t asks its user for names, with
// message (vault.AskSecretRequest: it joins or opens its profile's pending
// request); the answer restarts t. A name the profile already gives a
// value to, or one envvault sets for every task, is refused: a request
// asks only for what is missing. Returns EINVALID (field names or message),
// ECONFLICT (field names) naming the names that have a value, ENOTFOUND if
// the profile was deleted.
func (o *Orchestrator) AskSecrets(ctx context.Context, t *Task, names []vault.RequiredSecret, message string) (*vault.SecretRequest, error) {
	if err := vault.CheckAsk(names, message); err != nil {
		return nil, err
	}
	for _, n := range names {
		if slices.Contains(taskNames, n.Name) {
			return nil, vault.Invalid("names", "%s is set by envvault for every task: no request can give it", n.Name)
		}
	}
	keys, err := o.SecretKeys(ctx, t.UserID, t.ProfileID)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, n := range names {
		if slices.ContainsFunc(keys, func(k SecretKey) bool { return k.Name == n.Name && k.HasValue }) {
			have = append(have, n.Name)
		}
	}
	if len(have) > 0 {
		return nil, &vault.Error{Code: vault.ECONFLICT, Field: "names", Message: fmt.Sprintf(
			"names: already given a value in this task's profile: %s; a request asks only for names without one (GET /v1/task/secret-keys)",
			strings.Join(have, ", "))}
	}
	r, err := o.vault.AskSecretRequest(ctx, t.UserID, t.ProfileID, t.ID, t.Attempt, names, message, o.requestTTL)
	if err != nil {
		return nil, err
	}
	o.log.Info("running task asks for secrets", "task", t.ID, "attempt", t.Attempt, "request", r.ID, "names", vault.RequiredNames(names))
	return r, nil
}

// restartAsking restarts each running task that asked on r (r.Asks) and
// still runs the attempt that asked: its next attempt gets the fresh env.
// A task that has ended, or runs another attempt, is left alone.
func (o *Orchestrator) restartAsking(ctx context.Context, r *vault.SecretRequest) {
	for _, a := range r.Asks {
		requested := false
		_, err := o.store.UpdateTask(ctx, a.TaskID, func(cur *Task) error {
			if (cur.Status != StatusRunning && cur.Status != StatusStarting) || cur.Attempt != a.Attempt || cur.StopRequested {
				return nil
			}
			cur.StopRequested, cur.RestartRequested, cur.UpdatedAt = true, true, o.timestamp()
			requested = true
			return nil
		})
		if err != nil {
			if vault.ErrorCode(err) != vault.ENOTFOUND && ctx.Err() == nil {
				o.log.Error("restart asking task", "task", a.TaskID, "request", r.ID, "err", err)
			}
			continue
		}
		if !requested {
			continue
		}
		marker := fmt.Sprintf("\n--- envvault: restarting (attempt %d) because secret request %s was answered ---\n", a.Attempt+1, r.ID)
		if err := o.store.AppendTaskLog(ctx, a.TaskID, []byte(marker)); err != nil {
			o.log.Error("mark restart of asking task in logs", "task", a.TaskID, "err", err)
		}
		o.log.Info("restart task: its secret request was answered", "task", a.TaskID, "request", r.ID, "attempt", a.Attempt)
		o.signal(a.TaskID)
	}
	if len(r.Asks) > 0 {
		o.notify()
	}
}
