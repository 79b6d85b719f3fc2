package vault

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// SecretAnswer is the value given for one name of a secret request and
// the scope of the secret that stores it: ScopeAll (every profile) or
// ScopeAgents (the request's profile only).
type SecretAnswer struct {
	Value string
	Scope Scope
}

// AnswerSecretRequestEach is AnswerSecretRequest with a scope chosen for
// each name (the dashboard asks "this profile only" or "all profiles" per
// name): answers maps a name of the request to its value and scope. It
// stores every value and marks the request answered in one transaction,
// all or nothing, through the import path (one import per scope, each
// with its rules, locks and audit events), then appends
// secret_request.answer with the names and the scope ("scope" when every
// name has the same, else "scopes": name -> scope), never a value.
//
// Names are numbered by their sorted order: an *ImportError's line N is
// the N-th name of answers, sorted. Returns EINVALID for no answers or a
// name the request does not ask for (field "values"), an *ImportError
// (EINVALID) naming every name whose value or scope breaks a rule, an
// *ImportError (ECONFLICT) naming every value that collides with the
// user's secrets, ECONFLICT if the request is no longer pending or the
// user would pass the most secrets allowed, ENOTFOUND if it does not
// exist.
func (s *Service) AnswerSecretRequestEach(ctx context.Context, userID, id string, answers map[string]SecretAnswer) (*SecretRequest, error) {
	if len(answers) == 0 {
		return nil, Invalid("values", "is required: give a value for at least one of the request's names")
	}
	names := AnswerNames(answers)
	entries := make([]ImportEntry, len(names))
	var bad []ImportLineError
	for i, name := range names {
		entries[i] = ImportEntry{Line: i + 1, Name: name, Value: answers[name].Value}
		if sc := answers[name].Scope; sc != ScopeAll && sc != ScopeAgents {
			bad = append(bad, ImportLineError{i + 1, fmt.Sprintf("scope of %s must be %q or %q", truncate(name, 64), ScopeAll, ScopeAgents)})
		}
	}
	if err := s.CheckImport(entries); err != nil {
		bad = append(bad, err.(*ImportError).Lines...)
	}
	var out *SecretRequest
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		r, err := s.lockPendingRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, name := range names {
			if !slices.Contains(RequiredNames(r.Names), name) {
				return Invalid("values", "%s is not one of the names the request asks for (%s)", truncate(name, 64), strings.Join(RequiredNames(r.Names), ", "))
			}
		}
		if len(bad) > 0 {
			slices.SortStableFunc(bad, func(a, b ImportLineError) int { return a.Line - b.Line })
			return &ImportError{Lines: bad}
		}
		if err := s.importAnswers(ctx, tx, userID, r.ProfileID, entries, answers); err != nil {
			return err
		}
		now := s.timestamp()
		r.Status, r.UpdatedAt, r.AnsweredAt = RequestAnswered, now, &now
		if err := tx.UpdateSecretRequest(ctx, r); err != nil {
			return err
		}
		out = r
		return s.audit(ctx, tx, userID, ActionSecretRequestAnswer, TargetSecretRequest, r.ID, answerDetails(r.ProfileID, names, answers))
	})
	if err != nil {
		return nil, fmt.Errorf("answer secret request %s: %w", id, err)
	}
	return out, nil
}

// importAnswers writes entries (checked) as one import per scope inside
// tx. The lines of both imports that collide with the user's secrets are
// named together: the transaction is the caller's to roll back.
func (s *Service) importAnswers(ctx context.Context, tx Tx, userID, profileID string, entries []ImportEntry, answers map[string]SecretAnswer) error {
	var conflicts []ImportLineError
	for _, scope := range []Scope{ScopeAll, ScopeAgents} {
		var group []ImportEntry
		for _, e := range entries {
			if answers[e.Name].Scope == scope {
				group = append(group, e)
			}
		}
		if len(group) == 0 {
			continue
		}
		var ids []string
		if scope == ScopeAgents {
			ids = []string{profileID}
		}
		_, err := s.importTx(ctx, tx, userID, group, scope, ids)
		if ie, ok := err.(*ImportError); ok {
			// Found by reads before any write of its group: the
			// transaction is still usable for the other group's checks.
			conflicts = append(conflicts, ie.Lines...)
			continue
		}
		if err != nil {
			return err
		}
	}
	if len(conflicts) > 0 {
		slices.SortStableFunc(conflicts, func(a, b ImportLineError) int { return a.Line - b.Line })
		return &ImportError{Lines: conflicts, code: ECONFLICT}
	}
	return nil
}

// answerDetails are the audit details of an answer: names and scopes,
// never a value.
func answerDetails(profileID string, names []string, answers map[string]SecretAnswer) map[string]any {
	d := map[string]any{"profile_id": profileID, "names": names}
	scopes := map[string]string{}
	for _, n := range names {
		scopes[n] = string(answers[n].Scope)
	}
	if first := scopes[names[0]]; !slices.ContainsFunc(names, func(n string) bool { return scopes[n] != first }) {
		d["scope"] = first
	} else {
		d["scopes"] = scopes
	}
	return d
}

// AnswerNames returns the names of answers, sorted: the order whose
// position (from 1) is the line an *ImportError of
// AnswerSecretRequestEach names.
func AnswerNames(answers map[string]SecretAnswer) []string {
	names := make([]string, 0, len(answers))
	for name := range answers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// PendingSecretRequestOf returns the pending request of one of the user's
// profiles: what its tasks in awaiting_secrets wait for. Returns ENOTFOUND
// if the profile has none (or is not the user's).
func (s *Service) PendingSecretRequestOf(ctx context.Context, userID, profileID string) (*SecretRequest, error) {
	r, err := view(ctx, s.store, userID, func(tx Tx) (*SecretRequest, error) { return tx.PendingSecretRequest(ctx, profileID) })
	if err != nil {
		return nil, fmt.Errorf("read pending secret request of profile %s: %w", profileID, err)
	}
	return r, nil
}
