package vault

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// A running task's ask (issue 13 item 3): through its task credential
// (task_credential.go) the agent in a running task asks the user for
// values of names, with a message. The ask joins its profile's one pending
// secret request, as a waiting task does, but the task is not waiting: it
// keeps running, and the answer restarts it (its next attempt gets the
// fresh env). A cancel or an expiry leaves it running; the agent reads the
// request's status to learn it was refused.

// Limits of a task's ask.
const (
	// MaxAskNames is how many names one ask may name.
	MaxAskNames = 20
	// MaxAskMessageLen bounds an ask's message, in bytes.
	MaxAskMessageLen = 2000
)

// TaskAsk is one running task's ask on a secret request: which task and
// attempt asked, for which names, with what message for the user. Never a
// value.
type TaskAsk struct {
	TaskID  string    `json:"task_id"`
	Attempt int       `json:"attempt"`
	Names   []string  `json:"names"`
	Message string    `json:"message"`
	AskedAt time.Time `json:"asked_at"`
}

// AskedBy reports whether task taskID (any attempt) asked on r.
func (r *SecretRequest) AskedBy(taskID string) bool {
	return slices.ContainsFunc(r.Asks, func(a TaskAsk) bool { return a.TaskID == taskID })
}

// CheckAsk checks what a task asks for: 1 to MaxAskNames names, each a
// valid secret name given once, each description within a secret
// description's limits, and a message of at most MaxAskMessageLen bytes of
// printable UTF-8 (line breaks and tabs allowed). Returns EINVALID naming
// the field ("names" or "message") and the rule.
func CheckAsk(names []RequiredSecret, message string) error {
	if len(names) == 0 || len(names) > MaxAskNames {
		return Invalid("names", "must hold 1 to %d names", MaxAskNames)
	}
	seen := make(map[string]bool, len(names))
	for i, r := range names {
		if err := ValidateName("name", r.Name); err != nil {
			return Invalid("names", "entry %d: %s", i, ErrorMessage(err))
		}
		if seen[r.Name] {
			return Invalid("names", "entry %d: name %s is given twice", i, r.Name)
		}
		seen[r.Name] = true
		if err := validateDescription(r.Description); err != nil {
			return Invalid("names", "entry %d (%s): %s", i, r.Name, ErrorMessage(err))
		}
	}
	if len(message) > MaxAskMessageLen || !utf8.ValidString(message) ||
		!printable(strings.NewReplacer("\n", " ", "\t", " ").Replace(message)) {
		return Invalid("message", "must be at most %d bytes of printable text (line breaks and tabs allowed)", MaxAskMessageLen)
	}
	return nil
}

// AskSecretRequest records that attempt attempt of running task taskID on
// the profile asks the user for names, with message: the ask joins the
// profile's pending request (adding the names it lacks; a second ask of
// the same attempt replaces its first) or opens one expiring after ttl
// (DefaultSecretRequestTTL if 0 or less). It appends secret_request.open
// with the task, attempt and names and "by": "task" (never the message,
// never a value). Returns EINVALID as CheckAsk, ENOTFOUND if the profile is
// not the user's, ECONFLICT if the request holds MaxRequestTasks asks.
func (s *Service) AskSecretRequest(ctx context.Context, userID, profileID, taskID string, attempt int, names []RequiredSecret, message string, ttl time.Duration) (*SecretRequest, error) {
	if err := CheckAsk(names, message); err != nil {
		return nil, err
	}
	names = normalizeRequired(names)
	ask := TaskAsk{TaskID: taskID, Attempt: attempt, Names: RequiredNames(names), Message: strings.TrimSpace(message), AskedAt: s.timestamp()}
	slices.Sort(ask.Names)
	join := func(r *SecretRequest) error {
		i := slices.IndexFunc(r.Asks, func(a TaskAsk) bool { return a.TaskID == taskID && a.Attempt == attempt })
		switch {
		case i >= 0:
			ask.Names = slices.Compact(slices.Sorted(slices.Values(append(r.Asks[i].Names, ask.Names...))))
			r.Asks[i] = ask
		case len(r.Asks) >= MaxRequestTasks:
			return Errorf(ECONFLICT, "secret request %s holds %d asks, the most it may: ask again once it is answered", r.ID, MaxRequestTasks)
		default:
			r.Asks = append(r.Asks, ask)
		}
		return nil
	}
	details := func(r *SecretRequest) map[string]any {
		return map[string]any{"profile_id": profileID, "task_id": taskID, "attempt": attempt, "by": "task", "names": ask.Names}
	}
	return s.openRequest(ctx, userID, profileID, names, ttl, join, details)
}
