package vault

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The events of the audit trail: what each action records, who it records
// as the actor, and the user's own listing. Every change the Service makes
// appends its event inside the transaction of the change (Service.audit),
// so a change whose event cannot be written does not happen. How events
// are chained and verified is in audit_chain.go.

// Audit actions.
const (
	ActionSecretCreate   = "secret.create"
	ActionSecretUpdate   = "secret.update"
	ActionSecretDelete   = "secret.delete"
	ActionSecretRollback = "secret.rollback"
	ActionProfileCreate  = "profile.create"
	ActionProfileUpdate  = "profile.update"
	ActionProfileDelete  = "profile.delete"
	ActionTokenCreate    = "token.create"
	ActionTokenRevoke    = "token.revoke"
	ActionUserCreate     = "user.create"
	ActionAuthFailed     = "auth.failed"
	ActionTaskRelease    = "task.release"
	ActionAuditPrune     = "audit.prune"
	// Secret requests (secret_request.go): never a value in their details.
	ActionSecretRequestOpen   = "secret_request.open"
	ActionSecretRequestAnswer = "secret_request.answer"
	ActionSecretRequestCancel = "secret_request.cancel"
	ActionSecretRequestExpire = "secret_request.expire"
	// ActionTaskPushRestart: a worker restarts a running task because a
	// secret it was given changed (secret_change.go).
	ActionTaskPushRestart = "task.push_restart"
	// OAuth2 secrets (oauth2.go): names, ids, flow, expiry and reason,
	// never a token.
	ActionOAuth2Connect       = "oauth2.connect"
	ActionOAuth2Refresh       = "oauth2.refresh"
	ActionOAuth2RefreshFailed = "oauth2.refresh_failed"
	// The interactive flows (oauth2_flow.go): a start, and a completion
	// refused (reason; never the state, code or a token). The completion
	// that works is oauth2.connect.
	ActionOAuth2Authorize        = "oauth2.authorize"
	ActionOAuth2AuthorizeRefused = "oauth2.authorize_refused"
)

// AuditActions lists every action an event may have, sorted.
var AuditActions = []string{
	ActionAuditPrune, ActionAuthFailed, ActionOAuth2Authorize, ActionOAuth2AuthorizeRefused,
	ActionOAuth2Connect, ActionOAuth2Refresh, ActionOAuth2RefreshFailed,
	ActionProfileCreate, ActionProfileDelete, ActionProfileUpdate,
	ActionSecretCreate, ActionSecretDelete, ActionSecretRollback, ActionSecretUpdate,
	ActionSecretRequestAnswer, ActionSecretRequestCancel, ActionSecretRequestExpire, ActionSecretRequestOpen,
	ActionTaskPushRestart, ActionTaskRelease, ActionTokenCreate, ActionTokenRevoke, ActionUserCreate,
}

// Audit target types.
const (
	TargetSecret  = "secret"
	TargetProfile = "profile"
	TargetToken   = "token"
	TargetUser    = "user"
	TargetTask    = "task"
	TargetAudit   = "audit"
	// TargetSecretRequest is a secret request (secret_request.go).
	TargetSecretRequest = "secret_request"
)

// Actor is who a request acts as, and where it comes from. The API and the
// dashboard put it in a request's context (WithActor); the Service copies
// it into every audit event the request causes.
type Actor struct {
	// UserID is the user the action is done for: the signed-in user, or
	// the user a task or the operator acts for. Empty for a failed
	// sign-in.
	UserID string
	// TokenID is the API token the request authenticated with (a
	// dashboard session's too); empty when no token acts: the operator's
	// command line, the task worker, a failed sign-in.
	TokenID    string
	RequestID  string // the X-Request-Id of the request; empty outside one
	ClientAddr string // the client's IP address, as the server saw it
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the Actor ctx carries, or the zero Actor.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// AuditEvent is one event of the audit trail. It never holds a secret
// value or a token: Details name what was done (names, ids, versions).
type AuditEvent struct {
	Seq  int64     // its place in the chain, from 1, without gaps
	Time time.Time // UTC, whole microseconds
	Actor
	Action     string // one of AuditActions
	TargetType string // TargetSecret, TargetProfile, ...
	TargetID   string
	Details    map[string]any
	PrevHash   []byte // Hash of the event before it; empty for the first
	Hash       []byte // see auditHashDomain
}

// AuditFilter selects a page of a user's events, newest first.
type AuditFilter struct {
	Action   string    // "" for any
	TargetID string    // "" for any
	Since    time.Time // zero for no bound; inclusive
	Until    time.Time // zero for no bound; exclusive
	Before   int64     // only events of a lower Seq; 0 for no bound
	Limit    int
}

// AuditTx is the audit trail inside a user's transaction.
type AuditTx interface {
	// AppendAudit appends ev to the trail in the transaction: it commits
	// with the write, or neither does. If it fails, the transaction must
	// not commit. Where the store places it in the chain (ev.Chain) is the
	// store's: SQLite inside the transaction, under its one writer's lock;
	// PostgreSQL, which takes no lock here, by a link pass that starts when
	// the commit is done and that the store's every read of the trail
	// (AuditEvents, AuditHead, AuditChain, PruneAudit) waits for
	// (AuditStore.LinkAudit). Either way every read after Update returns
	// sees it in the chain.
	AppendAudit(ctx context.Context, ev *AuditEvent) error
	// AuditEvents returns up to f.Limit of the user's events (those whose
	// UserID is the transaction's user) that match f, newest first.
	AuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
}

// AuditStore is the audit trail outside user transactions: the events of
// no user (a failed sign-in) and the operator's verify and prune.
type AuditStore interface {
	// AppendAuditEvent appends ev, as AppendAudit does, in a transaction
	// of its own.
	AppendAuditEvent(ctx context.Context, ev *AuditEvent) error
	// LinkAudit places in the chain, in order of their append, the events
	// committed but not yet in it, and returns how many it placed. Events
	// appended before the call began are all placed when it returns nil.
	// A store that places events when they are appended returns 0.
	LinkAudit(ctx context.Context) (int64, error)
	// AuditHead returns the state of the chain.
	AuditHead(ctx context.Context) (AuditHead, error)
	// AuditChain returns up to limit events of every user with a Seq
	// after afterSeq, in order of Seq.
	AuditChain(ctx context.Context, afterSeq int64, limit int) ([]*AuditEvent, error)
	// PruneAudit deletes the oldest events, up to and not including the
	// first (by Seq) whose Time is at or after before, and moves the
	// anchor to the oldest event kept. It returns how many it deleted and
	// the head after.
	PruneAudit(ctx context.Context, before time.Time) (int64, AuditHead, error)
}

// event returns the audit event of an action the Service does for userID,
// with the actor of ctx (its token, request and client address) and the
// current time. The store completes it when it appends it.
func (s *Service) event(ctx context.Context, userID, action, targetType, targetID string, details map[string]any) *AuditEvent {
	a := ActorFrom(ctx)
	a.UserID = userID
	return &AuditEvent{
		Time: s.timestamp(), Actor: a, Action: action,
		TargetType: targetType, TargetID: targetID, Details: details,
	}
}

// audit appends the event of an action to tx, the transaction of the
// action itself. It is the last thing a write does before it commits: on
// SQLite the chain's place is taken here.
func (s *Service) audit(ctx context.Context, tx Tx, userID, action, targetType, targetID string, details map[string]any) error {
	if err := tx.AppendAudit(ctx, s.event(ctx, userID, action, targetType, targetID, details)); err != nil {
		return fmt.Errorf("record %s in the audit trail: %w", action, err)
	}
	return nil
}

// secretDetails describes a secret in an event: never its value.
func secretDetails(sec *Secret) map[string]any {
	ids := sec.ProfileIDs
	if ids == nil {
		ids = []string{}
	}
	d := map[string]any{"name": sec.Name, "scope": string(sec.Scope), "profile_ids": ids, "version": sec.Version}
	if sec.Kind == KindOAuth2 {
		d["kind"] = string(KindOAuth2)
	}
	return d
}

// secretChanges names the fields an update of cur to next changed.
func secretChanges(cur, next *Secret, valueChanged bool) []string {
	changed := []string{}
	if cur.Name != next.Name {
		changed = append(changed, "name")
	}
	if valueChanged {
		changed = append(changed, "value")
	}
	if cur.Scope != next.Scope {
		changed = append(changed, "scope")
	}
	if !slices.Equal(cur.ProfileIDs, next.ProfileIDs) {
		changed = append(changed, "profile_ids")
	}
	if cur.Description != next.Description {
		changed = append(changed, "description")
	}
	return changed
}

// profileChanges names the fields an update of cur to next changed. Env
// values are the profile's own, not secrets, but the event names only the
// keys that changed.
func profileChanges(cur, next *Profile) []string {
	changed := []string{}
	if cur.Name != next.Name {
		changed = append(changed, "name")
	}
	if cur.Image != next.Image {
		changed = append(changed, "image")
	}
	if !slices.Equal(cur.Command, next.Command) {
		changed = append(changed, "command")
	}
	if !slices.Equal(cur.SetupCommands, next.SetupCommands) {
		changed = append(changed, "setup_commands")
	}
	if len(cur.Env) != len(next.Env) || !envEqual(cur.Env, next.Env) {
		changed = append(changed, "env")
	}
	if !slices.Equal(cur.RequiredSecrets, next.RequiredSecrets) {
		changed = append(changed, "required_secrets")
	}
	if cur.OnSecretChange != next.OnSecretChange {
		changed = append(changed, "on_secret_change")
	}
	return changed
}

func envEqual(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// AuditOptions are a request for a page of the user's own events.
type AuditOptions struct {
	Action   string    // one of AuditActions, or "" for any
	TargetID string    // "" for any
	Since    time.Time // zero for no bound; inclusive
	Until    time.Time // zero for no bound; exclusive
	Cursor   string
	Limit    int // 0 means DefaultPageLimit
}

// maxTargetLen bounds the target filter: longer than any id.
const maxTargetLen = 128

func auditCursor(e *AuditEvent) Cursor {
	return Cursor{Key: fmt.Sprintf("%020d", e.Seq), ID: strconv.FormatInt(e.Seq, 10)}
}

// AuditEvents lists the user's own events, newest first. Returns EINVALID
// for a bad limit, cursor, action, target or time range.
func (s *Service) AuditEvents(ctx context.Context, userID string, o AuditOptions) (Page[*AuditEvent], error) {
	lf, err := ListOptions{Cursor: o.Cursor, Limit: o.Limit}.Filter()
	if err != nil {
		return Page[*AuditEvent]{}, err
	}
	f := AuditFilter{Action: o.Action, TargetID: o.TargetID, Since: o.Since, Until: o.Until, Limit: lf.Limit + 1}
	if lf.After != nil {
		seq, err := strconv.ParseInt(lf.After.Key, 10, 64)
		if err != nil || seq < 1 || auditCursor(&AuditEvent{Seq: seq}) != *lf.After {
			return Page[*AuditEvent]{}, Invalid("cursor", "is not a cursor this API returned")
		}
		f.Before = seq
	}
	if o.Action != "" {
		if _, ok := slices.BinarySearch(AuditActions, o.Action); !ok {
			return Page[*AuditEvent]{}, Invalid("action", "must be one of %s", strings.Join(AuditActions, ", "))
		}
	}
	if len(o.TargetID) > maxTargetLen || !printable(o.TargetID) {
		return Page[*AuditEvent]{}, Invalid("target", "must be at most %d printable characters", maxTargetLen)
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && !o.Since.Before(o.Until) {
		return Page[*AuditEvent]{}, Invalid("until", "must be after since")
	}
	list, err := view(ctx, s.store, userID, func(tx Tx) ([]*AuditEvent, error) { return tx.AuditEvents(ctx, f) })
	if err != nil {
		return Page[*AuditEvent]{}, fmt.Errorf("list audit events: %w", err)
	}
	return NewPage(list, f.Limit-1, auditCursor), nil
}
