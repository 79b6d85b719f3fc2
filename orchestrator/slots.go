package orchestrator

import (
	"context"
	"runtime"
	"slices"
	"time"

	"github.com/envvault/envvault/vault"
)

// Defaults of how much work one worker takes on, and how much one user
// may have waiting. The README's "Bounded work" says why.
const (
	// DefaultUserSharePercent is the share of a worker's slots one user's
	// tasks may hold.
	DefaultUserSharePercent = 50
	// DefaultMaxQueuedPerUser is how many tasks one user may have queued;
	// creating one more is refused (429).
	DefaultMaxQueuedPerUser = 100
	// QueueRetryAfter is when a client refused for a full queue is told to
	// try again (Retry-After).
	QueueRetryAfter = 10 * time.Second
)

// DefaultMaxRunning is how many task containers a worker runs at once
// unless configured: two per core, as agents mostly wait on model APIs and
// each container is held to one CPU by default.
func DefaultMaxRunning() int { return 2 * runtime.NumCPU() }

// slots counts the tasks this worker is starting or running, in all and
// per user. The orchestrator's mu guards it.
type slots struct {
	max, perUser int
	total        int
	byUser       map[string]int
}

// newSlots returns the slots of a worker running at most maxRunning tasks,
// of which one user holds at most sharePercent (at least one).
func newSlots(maxRunning, sharePercent int) slots {
	if maxRunning <= 0 {
		maxRunning = DefaultMaxRunning()
	}
	if sharePercent <= 0 || sharePercent > 100 {
		sharePercent = DefaultUserSharePercent
	}
	return slots{max: maxRunning, perUser: max(1, maxRunning*sharePercent/100), byUser: map[string]int{}}
}

func (s *slots) take(user string) { s.total++; s.byUser[user]++ }

func (s *slots) give(user string) {
	s.total--
	if s.byUser[user]--; s.byUser[user] <= 0 {
		delete(s.byUser, user)
	}
}

// claimOrder returns the users to skip at each try of a claim, in order:
// first every user who runs a task here (so a user with none comes first),
// then those who run more than one, and so on up to those at their share.
// The oldest queued task of the first try that finds one is claimed, so a
// free slot goes to the user who holds the fewest. Nil when no slot is
// free.
func (s *slots) claimOrder() [][]string {
	if s.total >= s.max {
		return nil
	}
	levels := []int{0}
	for _, n := range s.byUser {
		if n < s.perUser && !slices.Contains(levels, n) {
			levels = append(levels, n)
		}
	}
	slices.Sort(levels)
	out := make([][]string, 0, len(levels))
	for _, level := range levels {
		skip := []string{}
		for user, n := range s.byUser {
			if n > level {
				skip = append(skip, user)
			}
		}
		slices.Sort(skip)
		out = append(out, skip)
	}
	return out
}

// claim claims the next task this worker has a slot for (claimOrder).
// Returns ENOTFOUND when there is none, or no slot is free.
func (o *Orchestrator) claim(ctx context.Context) (*Task, error) {
	o.mu.Lock()
	order := o.slots.claimOrder()
	o.mu.Unlock()
	for _, skip := range order {
		t, err := o.store.ClaimTask(ctx, o.worker, skip...)
		if vault.ErrorCode(err) != vault.ENOTFOUND {
			return t, err
		}
	}
	return nil, vault.Errorf(vault.ENOTFOUND, "no queued task this worker has a slot for")
}

// QueueLimiter is a Store that counts a user's queued tasks and inserts a
// new one under the user's lock, so that concurrent creations, from any
// process, never take a user past the limit. Both stores here are one
// (storetest checks it).
type QueueLimiter interface {
	// CreateQueuedTask is CreateTask, refused with QueueFull when t's
	// user has maxQueued tasks queued already.
	CreateQueuedTask(ctx context.Context, t *Task, maxQueued int) error
}

// QueueFull is the ELIMIT error of a user who has n tasks queued, the
// most allowed.
func QueueFull(n int) error {
	return vault.Errorf(vault.ELIMIT, "you have %d tasks queued, the most this platform holds for one user: retry once some have started", n)
}

// insertQueued stores a new queued task under the queue limit: exactly,
// with a QueueLimiter; else counted first, so that two requests of one
// user at the same moment may both pass.
func (o *Orchestrator) insertQueued(ctx context.Context, t *Task) error {
	if ql, ok := o.store.(QueueLimiter); ok {
		return ql.CreateQueuedTask(ctx, t, o.maxQueued)
	}
	n, err := o.store.QueuedTasks(ctx, t.UserID)
	if err != nil {
		return err
	}
	if n >= o.maxQueued {
		return QueueFull(n)
	}
	return o.store.CreateTask(ctx, t)
}
