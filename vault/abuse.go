package vault

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/envvault/envvault/internal/ratelimit"
)

// Failed authentication costs the one who fails, not the server: every
// token check that fails (API bearer tokens and dashboard sign-ins go
// through AuthenticateToken) takes one event from a limiter of its client
// address and one from a limiter of the token id it named; while either is
// empty, a check that would need the database is refused at once with
// ELIMIT and a Retry-After, without reading anything. (The limiters are
// read before the database is asked and taken from once it has answered,
// so that a good token's first check takes nothing: checks in flight at
// the same moment may each pass on the last event, a bounded overshoot.) A token this process
// has confirmed before (its hash is in the token cache, even past the
// entry's TTL) is never refused by these limiters: the one who holds the
// secret is not the one flooding, and other users' requests from the same
// address go on. Every refusal, limited or not, is counted in memory and
// written to the audit trail as one auth.failed event per (client
// address, token id or "malformed") per AuthFailureWindow, with its count:
// a flood grows the trail by at most MaxAuthFailureRows+1 events per
// window and process, whatever its rate.
const (
	// DefaultAuthFailuresPerSecond and DefaultAuthFailureBurst bound the
	// failed checks of one client address.
	DefaultAuthFailuresPerSecond = 1.0
	DefaultAuthFailureBurst      = 20
	// DefaultTokenFailuresPerSecond and DefaultTokenFailureBurst bound the
	// failed checks naming one token id.
	DefaultTokenFailuresPerSecond = 0.2
	DefaultTokenFailureBurst      = 5
	// AuthLimiterKeys is the most client addresses, and the most token
	// ids, given a limiter of their own (internal/ratelimit: idle ones are
	// dropped first; past it new ones share one).
	AuthLimiterKeys = 10_000
	// AuthFailureWindow is the window failed checks are counted over
	// before they are written, one event per source in it.
	AuthFailureWindow = time.Minute
	// MaxAuthFailureRows is the most sources written separately per
	// window; the failures of any more are written as one event whose
	// client address and target are "*".
	MaxAuthFailureRows = 100
	// malformedTarget is the target of the failures of tokens that do
	// not parse, which name no token id.
	malformedTarget = "malformed"
)

// AuthLimits bound failed authentication (Options.AuthLimits); zero
// fields take the defaults, and Off turns the limiters off (the audit
// events are still aggregated).
type AuthLimits struct {
	PerAddress      float64 // failures a second per client address
	AddressBurst    int
	PerToken        float64 // failures a second per token id
	TokenBurst      int
	Off             bool
	FailureWindow   time.Duration // AuthFailureWindow if 0
	MaxFailureRows  int           // MaxAuthFailureRows if 0
	LimiterKeysEach int           // AuthLimiterKeys if 0
}

func (l AuthLimits) withDefaults() AuthLimits {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.PerAddress, DefaultAuthFailuresPerSecond)
	def(&l.PerToken, DefaultTokenFailuresPerSecond)
	defInt(&l.AddressBurst, DefaultAuthFailureBurst)
	defInt(&l.TokenBurst, DefaultTokenFailureBurst)
	defInt(&l.MaxFailureRows, MaxAuthFailureRows)
	defInt(&l.LimiterKeysEach, AuthLimiterKeys)
	if l.FailureWindow <= 0 {
		l.FailureWindow = AuthFailureWindow
	}
	return l
}

// Why a token was refused (AuthFailureReason). They are the metrics
// package's reasons of the same names.
const (
	ReasonMalformed = "malformed"
	ReasonUnknown   = "unknown"
	ReasonMismatch  = "mismatch"
	ReasonExpired   = "expired"
)

// Which limiter refused a check (LimitError.Limit).
const (
	LimitAddress = "failed_auth_address"
	LimitTokenID = "failed_auth_token"
)

// AuthError is the EUNAUTHORIZED error of a refused token, with why. The
// client sees only Err, the same for every cause; Reason is for metrics.
type AuthError struct {
	Err    *Error
	Reason string
}

func (e *AuthError) Error() string { return e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// AuthFailureReason returns why err refused a token, or "".
func AuthFailureReason(err error) string {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

// LimitError is an ELIMIT error that says when to retry, and which limit
// refused.
type LimitError struct {
	Err        *Error
	RetryAfter time.Duration
	Limit      string
}

func (e *LimitError) Error() string { return e.Err.Error() }
func (e *LimitError) Unwrap() error { return e.Err }

// RetryAfter returns how long err says to wait, if it is a LimitError.
func RetryAfter(err error) (time.Duration, bool) {
	var le *LimitError
	if errors.As(err, &le) {
		return le.RetryAfter, true
	}
	return 0, false
}

// NewLimitError returns the ELIMIT error of limit, retry after d.
func NewLimitError(limit string, d time.Duration, format string, args ...any) *LimitError {
	return &LimitError{Err: Errorf(ELIMIT, format, args...), RetryAfter: d, Limit: limit}
}

// authGuard is the Service's failed-authentication limiters and counts.
type authGuard struct {
	limits  AuthLimits
	address *ratelimit.Set // nil when off
	token   *ratelimit.Set
	log     *failureLog
}

func newAuthGuard(l AuthLimits, s *Service) *authGuard {
	l = l.withDefaults()
	g := &authGuard{limits: l, log: &failureLog{svc: s, window: l.FailureWindow, maxRows: l.MaxFailureRows}}
	if !l.Off {
		g.address = ratelimit.New(l.PerAddress, l.AddressBurst, l.LimiterKeysEach, s.now)
		g.token = ratelimit.New(l.PerToken, l.TokenBurst, l.LimiterKeysEach, s.now)
	}
	return g
}

// check refuses, with a LimitError, a check from addr naming token id
// (malformedTarget for none) while either limiter is empty. It takes
// nothing from them.
func (g *authGuard) check(ctx context.Context, id string) error {
	if g.address == nil {
		return nil
	}
	addr := ActorFrom(ctx).ClientAddr
	limit, wait := LimitAddress, g.address.Wait(addr)
	if id != malformedTarget {
		if w := g.token.Wait(id); w > wait {
			limit, wait = LimitTokenID, w
		}
	}
	if wait <= 0 {
		return nil
	}
	g.log.add(ActorFrom(ctx), id, "")
	secs := time.Duration(math.Ceil(wait.Seconds())) * time.Second
	return NewLimitError(limit, secs, "too many failed authentications from this address or with this token: retry after %d s", int(secs.Seconds()))
}

// refused counts one refused check and takes an event from both
// limiters: the one function every refusal goes through.
func (s *Service) refused(ctx context.Context, id, reason, detail string) error {
	addr := ActorFrom(ctx).ClientAddr
	g := s.guard
	if g.address != nil {
		g.address.Allow(addr)
		if id != malformedTarget {
			g.token.Allow(id)
		}
	}
	g.log.add(ActorFrom(ctx), id, detail)
	return &AuthError{Err: errBadToken, Reason: reason}
}

// failureLog counts refused checks per source over a window and writes
// each source's count as one audit event when the window ends.
type failureLog struct {
	svc     *Service
	window  time.Duration
	maxRows int

	mu      sync.Mutex
	start   time.Time
	order   []failKey // in order of first failure
	counts  map[failKey]*failCount
	timer   *time.Timer
	flushMu sync.Mutex // one flush at a time, in order
}

type failKey struct{ addr, target string }

type failCount struct {
	failed, limited int
	reasons         map[string]int
	reason          string // of the first failure
	requestID       string // of the first refused request
	first, last     time.Time
}

// overflowKey is the source of every failure past maxRows sources in a
// window.
var overflowKey = failKey{"*", "*"}

// add counts one refused check of the actor's address naming target: a
// failure with reason, or, if reason is "", a check the limiters refused.
func (l *failureLog) add(a Actor, target, reason string) {
	now, addr := l.svc.timestamp(), a.ClientAddr
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = make(map[failKey]*failCount)
		l.start = now
		l.timer = time.AfterFunc(l.window, func() { _ = l.flush(context.Background()) })
	}
	k := failKey{addr, target}
	c, ok := l.counts[k]
	if !ok {
		if len(l.counts) >= l.maxRows {
			k = overflowKey
		}
		if c, ok = l.counts[k]; !ok {
			c = &failCount{reasons: map[string]int{}, first: now}
			l.counts[k] = c
			l.order = append(l.order, k)
		}
	}
	if c.requestID == "" && k != overflowKey {
		c.requestID = a.RequestID
	}
	c.last = now
	if reason == "" {
		c.limited++
		return
	}
	c.failed++
	c.reasons[reason]++
	if c.reason == "" {
		c.reason = reason
	}
}

// flush writes the window's counts to the audit trail, one event per
// source, and starts a new window. Counts it could not write are kept for
// the next flush.
func (l *failureLog) flush(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	order, counts, start := l.order, l.counts, l.start
	l.order, l.counts = nil, nil
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.mu.Unlock()
	for i, k := range order {
		c := counts[k]
		ev := &AuditEvent{
			Time: l.svc.timestamp(), Actor: Actor{RequestID: c.requestID, ClientAddr: k.addr},
			Action: ActionAuthFailed, TargetType: TargetToken, TargetID: k.target,
			Details: c.details(start, l.window),
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := l.svc.store.AppendAuditEvent(wctx, ev)
		cancel()
		if err != nil {
			l.requeue(order[i:], counts)
			return fmt.Errorf("record failed authentications in the audit trail: %w", err)
		}
	}
	return nil
}

// requeue puts back counts a flush could not write.
func (l *failureLog) requeue(order []failKey, counts map[failKey]*failCount) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = make(map[failKey]*failCount)
		l.start = counts[order[0]].first
		l.timer = time.AfterFunc(l.window, func() { _ = l.flush(context.Background()) })
	}
	for _, k := range order {
		old := counts[k]
		c, ok := l.counts[k]
		if !ok {
			l.counts[k] = old
			l.order = append(l.order, k)
			continue
		}
		c.failed += old.failed
		c.limited += old.limited
		for r, n := range old.reasons {
			c.reasons[r] += n
		}
		c.first = old.first
		if old.reason != "" {
			c.reason = old.reason
		}
	}
}

func (c *failCount) details(start time.Time, window time.Duration) map[string]any {
	reasons := make(map[string]any, len(c.reasons))
	for r, n := range c.reasons {
		reasons[r] = n
	}
	return map[string]any{
		"reason": c.reason, "failed": c.failed, "limited": c.limited, "reasons": reasons,
		"window_start": start.Format(time.RFC3339Nano), "window_seconds": int(window.Seconds()),
		"first": c.first.Format(time.RFC3339Nano), "last": c.last.Format(time.RFC3339Nano),
	}
}

// FlushAuthFailures writes the failed authentications counted so far to
// the audit trail now, rather than at the end of their window: at
// shutdown, and in tests.
func (s *Service) FlushAuthFailures(ctx context.Context) error { return s.guard.log.flush(ctx) }
