package vault

import (
	"context"
	"fmt"
)

// What a running task of a profile does when a secret it was given changes
// or is deleted (Profile.OnSecretChange). Either way a process keeps the
// values it started with: a new value reaches a task only in a fresh
// container (a new process tree), as the workflow frameworks that push
// secrets to a remote environment do when they restart the app.
const (
	// OnSecretChangeKeep leaves the task running on its old values; the
	// task is reported stale (the default).
	OnSecretChangeKeep = "keep"
	// OnSecretChangeRestart restarts the task with the fresh env (attempt
	// n+1), once per burst of changes (orchestrator/push.go).
	OnSecretChangeRestart = "restart"
)

// validateOnSecretChange checks a profile's on_secret_change.
func validateOnSecretChange(v string) error {
	if v != OnSecretChangeKeep && v != OnSecretChangeRestart {
		return Invalid("on_secret_change", "must be %q or %q", OnSecretChangeKeep, OnSecretChangeRestart)
	}
	return nil
}

// onSecretChangeOr returns v, or OnSecretChangeKeep if v is "".
func onSecretChangeOr(v string) string {
	if v == "" {
		return OnSecretChangeKeep
	}
	return v
}

// RecordPushRestart appends task.push_restart to the user's trail: the
// worker restarts the task (its attempt, on the profile) because the
// secrets of names changed. Names only, never a value. Call it before the
// restart is requested: no record, no restart.
func (s *Service) RecordPushRestart(ctx context.Context, userID, taskID, profileID string, attempt int, names []string) error {
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		return s.audit(ctx, tx, userID, ActionTaskPushRestart, TargetTask, taskID,
			map[string]any{"profile_id": profileID, "attempt": attempt, "names": names})
	})
	if err != nil {
		return fmt.Errorf("record push restart of task %s: %w", taskID, err)
	}
	return nil
}
