package vault

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A secret request asks the user for the values a profile's tasks wait
// for (issue 13): the required names (Profile.RequiredSecrets) that had no
// value when a task on the profile was to start. There is at most one
// pending request per profile: a task that finds one joins it (its id and
// any further names are added), so one answer releases every task waiting
// on the profile. The database backs that rule (a unique index on the
// pending requests of a profile); the service takes the profile's lock
// before it looks for the pending request.

// PrefixSecretRequest starts the id of a secret request.
const PrefixSecretRequest = "sreq_"

// RequestStatus is where a secret request is in its life.
type RequestStatus string

// Secret request statuses; every one but pending is final.
const (
	RequestPending   RequestStatus = "pending"
	RequestAnswered  RequestStatus = "answered"
	RequestCancelled RequestStatus = "cancelled"
	RequestExpired   RequestStatus = "expired"
)

// Limits of secret requests.
const (
	// MaxRequestTasks is how many tasks one request holds; a task beyond
	// it waits on the same names without being listed.
	MaxRequestTasks = 1000
	// MaxSecretRequestsListed is the most requests SecretRequests returns.
	MaxSecretRequestsListed = 200
	// DefaultSecretRequestTTL is how long a request waits for its answer
	// unless configured.
	DefaultSecretRequestTTL = 24 * time.Hour
)

// SecretRequest asks the user for values of Names, for the tasks TaskIDs
// on profile ProfileID. It never holds a value.
type SecretRequest struct {
	ID        string
	UserID    string
	ProfileID string
	Names     []RequiredSecret // sorted by name
	TaskIDs   []string         // in the order they joined
	// Asks are the running tasks that asked through their task credential
	// (task_ask.go), in the order they asked: an answer restarts them.
	Asks      []TaskAsk
	Status    RequestStatus
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt time.Time
	// AnsweredAt is set when the request was answered; nil otherwise.
	AnsweredAt *time.Time
}

// SecretRequestTx is what a user's transaction offers for secret
// requests.
type SecretRequestTx interface {
	// CreateSecretRequest inserts a request. Returns ECONFLICT if the
	// profile has a pending request already, or the id is taken.
	CreateSecretRequest(ctx context.Context, r *SecretRequest) error
	// UpdateSecretRequest replaces a request's names, tasks, status and
	// times. Returns ENOTFOUND if it does not exist, ECONFLICT if it would
	// make a second pending request of its profile.
	UpdateSecretRequest(ctx context.Context, r *SecretRequest) error
	// SecretRequest returns a request by id. Returns ENOTFOUND if it does
	// not exist.
	SecretRequest(ctx context.Context, id string) (*SecretRequest, error)
	// PendingSecretRequest returns the profile's pending request. Returns
	// ENOTFOUND if it has none.
	PendingSecretRequest(ctx context.Context, profileID string) (*SecretRequest, error)
	// SecretRequests returns up to limit requests, the pending ones first,
	// then newest first (by creation time, then id).
	SecretRequests(ctx context.Context, limit int) ([]*SecretRequest, error)
}

// SecretRequestStore is what the worker needs across users.
type SecretRequestStore interface {
	// DueSecretRequests returns up to limit pending requests, of any user,
	// whose ExpiresAt is not after now, oldest expiry first.
	DueSecretRequests(ctx context.Context, now time.Time, limit int) ([]*SecretRequest, error)
	// PendingSecretRequests returns up to limit pending requests of any
	// user, oldest first (by creation time, then id).
	PendingSecretRequests(ctx context.Context, limit int) ([]*SecretRequest, error)
}

// OpenSecretRequest asks the user for the values of names for task taskID
// on the profile: it joins the profile's pending request (adding the task
// and the names it lacks) or opens one expiring after ttl
// (DefaultSecretRequestTTL if 0 or less). It appends secret_request.open
// (names, task id; never a value). Returns EINVALID if names is empty or
// breaks the required-name rules, ENOTFOUND if the profile is not the
// user's.
func (s *Service) OpenSecretRequest(ctx context.Context, userID, profileID, taskID string, names []RequiredSecret, ttl time.Duration) (*SecretRequest, error) {
	if len(names) == 0 {
		return nil, Invalid("names", "is required: a request asks for at least one name")
	}
	if err := validateRequired(names); err != nil {
		return nil, err
	}
	join := func(r *SecretRequest) error {
		if !slices.Contains(r.TaskIDs, taskID) && len(r.TaskIDs) < MaxRequestTasks {
			r.TaskIDs = append(r.TaskIDs, taskID)
		}
		return nil
	}
	details := func(r *SecretRequest) map[string]any {
		return map[string]any{"profile_id": profileID, "task_id": taskID, "names": RequiredNames(r.Names)}
	}
	return s.openRequest(ctx, userID, profileID, names, ttl, join, details)
}

// openRequest joins the profile's pending request (adding the names it
// lacks, then join) or opens one expiring after ttl
// (DefaultSecretRequestTTL if 0 or less) and joins it, and appends
// secret_request.open with details. Returns ENOTFOUND if the profile is not
// the user's, join's error.
func (s *Service) openRequest(ctx context.Context, userID, profileID string, names []RequiredSecret, ttl time.Duration,
	join func(*SecretRequest) error, details func(*SecretRequest) map[string]any) (*SecretRequest, error) {
	if ttl <= 0 {
		ttl = DefaultSecretRequestTTL
	}
	var out *SecretRequest
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		// The profile's lock: two tasks of one profile open or join its one
		// pending request in turn.
		if _, err := lockProfile(ctx, tx, profileID); err != nil {
			return err
		}
		now := s.timestamp()
		r, err := tx.PendingSecretRequest(ctx, profileID)
		switch {
		case ErrorCode(err) == ENOTFOUND:
			r = &SecretRequest{
				ID: NewID(PrefixSecretRequest), UserID: userID, ProfileID: profileID, Status: RequestPending,
				Names: mergeNames(nil, names), TaskIDs: []string{}, Asks: []TaskAsk{}, CreatedAt: now, UpdatedAt: now,
				ExpiresAt: now.Add(ttl),
			}
			if err := join(r); err != nil {
				return err
			}
			if err := tx.CreateSecretRequest(ctx, r); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			r.Names = mergeNames(r.Names, names)
			if err := join(r); err != nil {
				return err
			}
			r.UpdatedAt = now
			if err := tx.UpdateSecretRequest(ctx, r); err != nil {
				return err
			}
		}
		out = r
		return s.audit(ctx, tx, userID, ActionSecretRequestOpen, TargetSecretRequest, r.ID, details(r))
	})
	if err != nil {
		return nil, fmt.Errorf("open secret request for profile %s: %w", profileID, err)
	}
	return out, nil
}

// mergeNames adds to have the names of add it lacks, sorted by name.
func mergeNames(have, add []RequiredSecret) []RequiredSecret {
	out := slices.Clone(have)
	for _, r := range add {
		if !slices.ContainsFunc(out, func(x RequiredSecret) bool { return x.Name == r.Name }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b RequiredSecret) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SecretRequest returns one of the user's requests. Returns ENOTFOUND if
// it does not exist.
func (s *Service) SecretRequest(ctx context.Context, userID, id string) (*SecretRequest, error) {
	r, err := view(ctx, s.store, userID, func(tx Tx) (*SecretRequest, error) { return tx.SecretRequest(ctx, id) })
	if err != nil {
		return nil, fmt.Errorf("read secret request %s: %w", id, err)
	}
	return r, nil
}

// SecretRequests returns the user's requests, the pending ones first, then
// newest first, at most MaxSecretRequestsListed.
func (s *Service) SecretRequests(ctx context.Context, userID string) ([]*SecretRequest, error) {
	list, err := view(ctx, s.store, userID, func(tx Tx) ([]*SecretRequest, error) {
		return tx.SecretRequests(ctx, MaxSecretRequestsListed)
	})
	if err != nil {
		return nil, fmt.Errorf("list secret requests: %w", err)
	}
	return list, nil
}

// AnswerSecretRequest stores values (NAME -> value) for a pending request
// and marks it answered, in one transaction: all or nothing. The values
// are written as an import with scope does (ImportSecrets: an `all` secret
// of the name is updated or created; with ScopeAgents the secret granting
// exactly the request's profile), so every rule, lock and audit event of a
// secret write applies; then secret_request.answer is appended (the names
// and scope, never a value). Every given name must be one of the
// request's; names not given keep waiting for another route (the request
// is answered all the same: the tasks start once nothing is missing, and
// open a new request otherwise). Returns EINVALID for no values, a name
// the request does not ask for, a bad scope or value (an *ImportError
// naming the names), ECONFLICT if the request is no longer pending or a
// value collides with the user's secrets, ENOTFOUND if it does not exist.
// It is AnswerSecretRequestEach with one scope for every name.
func (s *Service) AnswerSecretRequest(ctx context.Context, userID, id string, values map[string]string, scope Scope) (*SecretRequest, error) {
	if len(values) == 0 {
		return nil, Invalid("values", "is required: give a value for at least one of the request's names")
	}
	if scope != ScopeAll && scope != ScopeAgents {
		return nil, Invalid("scope", "must be %q or %q", ScopeAll, ScopeAgents)
	}
	answers := make(map[string]SecretAnswer, len(values))
	for name, v := range values {
		answers[name] = SecretAnswer{Value: v, Scope: scope}
	}
	return s.AnswerSecretRequestEach(ctx, userID, id, answers)
}

// SatisfySecretRequest marks a pending request answered once its names
// have values by another route (a secret created or imported, a profile's
// env), and appends secret_request.answer with "by": "secrets". Returns
// ECONFLICT if it is no longer pending, ENOTFOUND if it does not exist.
func (s *Service) SatisfySecretRequest(ctx context.Context, userID, id string) (*SecretRequest, error) {
	var out *SecretRequest
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		r, err := s.lockPendingRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.timestamp()
		r.Status, r.UpdatedAt, r.AnsweredAt = RequestAnswered, now, &now
		if err := tx.UpdateSecretRequest(ctx, r); err != nil {
			return err
		}
		out = r
		return s.audit(ctx, tx, userID, ActionSecretRequestAnswer, TargetSecretRequest, r.ID,
			map[string]any{"profile_id": r.ProfileID, "names": RequiredNames(r.Names), "by": "secrets"})
	})
	if err != nil {
		return nil, fmt.Errorf("close secret request %s: %w", id, err)
	}
	return out, nil
}

// PendingSecretRequests returns up to limit pending requests of every user,
// oldest first, for the worker that releases their tasks.
func (s *Service) PendingSecretRequests(ctx context.Context, limit int) ([]*SecretRequest, error) {
	list, err := s.store.PendingSecretRequests(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending secret requests: %w", err)
	}
	return list, nil
}

// DueSecretRequests returns up to limit pending requests of every user
// whose time is up, for the worker that expires them.
func (s *Service) DueSecretRequests(ctx context.Context, limit int) ([]*SecretRequest, error) {
	list, err := s.store.DueSecretRequests(ctx, s.timestamp(), limit)
	if err != nil {
		return nil, fmt.Errorf("read due secret requests: %w", err)
	}
	return list, nil
}

// CancelSecretRequest ends a pending request unanswered, by the user's
// choice, and appends secret_request.cancel. Its tasks are the caller's
// to end (orchestrator). Returns ECONFLICT if it is no longer pending,
// ENOTFOUND if it does not exist.
func (s *Service) CancelSecretRequest(ctx context.Context, userID, id string) (*SecretRequest, error) {
	return s.closeRequest(ctx, userID, id, RequestCancelled, ActionSecretRequestCancel)
}

// ExpireSecretRequest ends a pending request whose time is up, and appends
// secret_request.expire. Returns ECONFLICT if it is no longer pending or
// not yet due, ENOTFOUND if it does not exist.
func (s *Service) ExpireSecretRequest(ctx context.Context, userID, id string) (*SecretRequest, error) {
	return s.closeRequest(ctx, userID, id, RequestExpired, ActionSecretRequestExpire)
}

func (s *Service) closeRequest(ctx context.Context, userID, id string, status RequestStatus, action string) (*SecretRequest, error) {
	var out *SecretRequest
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		r, err := s.lockPendingRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.timestamp()
		if status == RequestExpired && now.Before(r.ExpiresAt) {
			return Errorf(ECONFLICT, "secret request %s expires at %s, not yet", id, r.ExpiresAt.Format(time.RFC3339))
		}
		r.Status, r.UpdatedAt = status, now
		if err := tx.UpdateSecretRequest(ctx, r); err != nil {
			return err
		}
		out = r
		return s.audit(ctx, tx, userID, action, TargetSecretRequest, r.ID,
			map[string]any{"profile_id": r.ProfileID, "names": RequiredNames(r.Names), "task_ids": r.TaskIDs})
	})
	if err != nil {
		return nil, fmt.Errorf("%s secret request %s: %w", strings.TrimPrefix(action, "secret_request."), id, err)
	}
	return out, nil
}

// lockPendingRequest takes a request's lock, reads it, and returns
// ECONFLICT unless it is pending.
func (s *Service) lockPendingRequest(ctx context.Context, tx Tx, id string) (*SecretRequest, error) {
	if err := tx.Lock(ctx, id); err != nil {
		return nil, err
	}
	r, err := tx.SecretRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status != RequestPending {
		return nil, Errorf(ECONFLICT, "secret request %s is %s, not pending", id, r.Status)
	}
	return r, nil
}
