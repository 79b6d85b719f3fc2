package vault

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Task credentials (issue 13 item 3). A running task's container receives
// a credential with which the agent inside may list its profile's secret
// keys and ask the user for missing names, and nothing else. It is not a
// stored token: it is stateless, an HMAC-SHA256 (seal.Keyring.MAC, a key
// derived from the current master key for this one purpose) over the
// task's user, id, attempt and expiry. Every use is checked against the
// task as stored (the caller's live function): the credential works only
// while its attempt is the task's current one and is starting or running,
// so it stops working when the task ends, is stopped or cancelled, and a
// restart's new attempt gets a new one while the old one stops. Nothing
// needs revoking and no table holds them. A rotation of the master key
// (a new current key) ends the credentials of tasks then running, as it
// signs every dashboard user out.
//
// Form: "ttk_" + task id + "." + user id + "." + attempt + "." + expiry
// (Unix seconds) + "." + base64url(MAC of everything before the last dot).
// Ids never hold a dot.

// PrefixTaskCredential starts every task credential.
const PrefixTaskCredential = "ttk_"

// TokenTask is the scope of a task credential: only the routes for the
// running task (api/scopes.go). It is never the scope of an API token a
// user makes (not in TokenScopes).
const TokenTask TokenScope = "task"

// DefaultTaskCredentialTTL bounds a task credential's life unless
// configured: the task's attempt must also still run.
const DefaultTaskCredentialTTL = 24 * time.Hour

// MaxTaskCredentialTTL is the longest life a task credential may be given.
const MaxTaskCredentialTTL = 30 * 24 * time.Hour

// HKDF salt and info of the key that signs task credentials. Changing one
// ends every credential in flight.
const (
	taskCredentialSalt = "envvault task credentials v1"
	taskCredentialInfo = "envvault task credential signing key v1"
)

// TaskCredential is what a task credential proves: the task, its user and
// attempt, and until when at most.
type TaskCredential struct {
	TaskID  string
	UserID  string
	Attempt int
	Expires time.Time // whole seconds, UTC
}

// ID names the credential where a token id goes (the audit trail's actor,
// the failed-authentication limiter): "ttk_<task id>.<attempt>". It is not
// secret and proves nothing.
func (c TaskCredential) ID() string {
	return PrefixTaskCredential + c.TaskID + "." + strconv.Itoa(c.Attempt)
}

func (c TaskCredential) body() string {
	return c.ID() + "." + c.UserID + "." + strconv.FormatInt(c.Expires.Unix(), 10)
}

// errBadTaskCredential is the one answer to every refused task
// credential, whatever the cause.
var errBadTaskCredential = Errorf(EUNAUTHORIZED,
	"invalid task credential: malformed, expired, or its task attempt is no longer running (a task's credential works only while that attempt runs)")

// TaskCredentialExpiry returns when a credential issued at for a task
// expires after ttl: DefaultTaskCredentialTTL if ttl is 0 or less, at most
// MaxTaskCredentialTTL, in whole seconds. The same at and ttl always give
// the same expiry, so a worker that restarts can make the same credential
// again (to mask it in the logs of a container it reattaches to).
func TaskCredentialExpiry(at time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		ttl = DefaultTaskCredentialTTL
	}
	return at.Add(min(ttl, MaxTaskCredentialTTL)).UTC().Truncate(time.Second)
}

// IssueTaskCredential returns the credential of c (c.Expires is kept in
// whole seconds). It stores nothing; the same c always gives the same
// credential under the same master key.
func (s *Service) IssueTaskCredential(c TaskCredential) string {
	c.Expires = c.Expires.UTC().Truncate(time.Second)
	body := c.body()
	sum := s.keys.MAC(taskCredentialSalt, taskCredentialInfo).Sum([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(sum)
}

// parseTaskCredential splits a credential into what it claims and its
// MAC, or returns false if it is not of the form.
func parseTaskCredential(token string) (TaskCredential, string, []byte, bool) {
	rest, ok := strings.CutPrefix(token, PrefixTaskCredential)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 5 || !validID(PrefixTask, parts[0]) || !validID(PrefixUser, parts[2]) {
		return TaskCredential{}, "", nil, false
	}
	attempt, err1 := strconv.Atoi(parts[1])
	expires, err2 := strconv.ParseInt(parts[3], 10, 64)
	sum, err3 := base64.RawURLEncoding.DecodeString(parts[4])
	if err1 != nil || err2 != nil || err3 != nil || attempt < 1 {
		return TaskCredential{}, "", nil, false
	}
	c := TaskCredential{TaskID: parts[0], UserID: parts[2], Attempt: attempt, Expires: time.Unix(expires, 0).UTC()}
	// The body as signed: a re-encoding (leading zeros, a sign) differs.
	body := token[:strings.LastIndexByte(token, '.')]
	if body != c.body() {
		return TaskCredential{}, "", nil, false
	}
	return c, body, sum, true
}

// TaskLiveness says whether a task credential's attempt still runs: nil if
// it does, ErrTaskEnded if not, another error if it cannot tell.
type TaskLiveness func(ctx context.Context, c TaskCredential) error

// ErrTaskEnded is what a TaskLiveness returns for an attempt that no
// longer runs (ended, another attempt, another user's, gone).
var ErrTaskEnded = Errorf(EUNAUTHORIZED, "the task attempt is no longer running")

// AuthenticateTaskCredential returns what a task credential proves, after
// live has confirmed its attempt still runs. Returns EUNAUTHORIZED (an
// *AuthError, one message for every cause: malformed, a wrong MAC,
// expired, an attempt that no longer runs) or ELIMIT (a *LimitError) while
// the client address or the credential has failed too often (abuse.go);
// live's other errors as they are.
func (s *Service) AuthenticateTaskCredential(ctx context.Context, token string, live TaskLiveness) (TaskCredential, error) {
	c, body, sum, ok := parseTaskCredential(token)
	if !ok {
		if err := s.guard.check(ctx, malformedTarget); err != nil {
			return TaskCredential{}, err
		}
		return TaskCredential{}, s.refusedTask(ctx, malformedTarget, ReasonMalformed, "malformed task credential")
	}
	want := s.keys.MAC(taskCredentialSalt, taskCredentialInfo).Sum([]byte(body))
	if subtle.ConstantTimeCompare(sum, want) != 1 {
		if err := s.guard.check(ctx, c.ID()); err != nil {
			return TaskCredential{}, err
		}
		return TaskCredential{}, s.refusedTask(ctx, c.ID(), ReasonMismatch, "wrong task credential MAC")
	}
	if !s.now().Before(c.Expires) {
		return TaskCredential{}, s.refusedTask(ctx, c.ID(), ReasonExpired, "expired task credential")
	}
	if err := live(ctx, c); errors.Is(err, ErrTaskEnded) {
		return TaskCredential{}, s.refusedTask(ctx, c.ID(), ReasonExpired, "task attempt ended")
	} else if err != nil {
		return TaskCredential{}, fmt.Errorf("check task %s: %w", c.TaskID, err)
	}
	return c, nil
}

// refusedTask is refused (the one place a failure is counted) with the
// task credential's message.
func (s *Service) refusedTask(ctx context.Context, id, reason, detail string) error {
	_ = s.refused(ctx, id, reason, detail)
	return &AuthError{Err: errBadTaskCredential, Reason: reason}
}
