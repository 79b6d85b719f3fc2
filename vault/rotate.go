package vault

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Master-key rotation re-wraps data keys: each secret's data key is opened
// with the keyring and sealed again under the current master key, bound to
// the same user and secret. The sealed value is never touched, so rotation
// costs two small GCM operations and one row write per secret, whatever
// the size of the value.

// SealedKey is a data key as key rotation reads it, from the rows of every
// user: a secret's, or one of a secret's kept versions' (history.go). A kept
// version's data key is bound to its secret's user and id, as the secret's
// is.
type SealedKey struct {
	SecretID    string
	Version     int // the kept version's number; 0 for the secret's own data key
	UserID      string
	Sealed      []byte // the data key under master key MasterKeyID
	MasterKeyID string
}

// KeySwap replaces the sealed data key of secret SecretID (of its kept
// version Version, if not 0) with New if it is still Old.
type KeySwap struct {
	SecretID string
	Version  int
	Old, New []byte
}

// DefaultRotateBatchSize is how many data keys RotateKeys re-wraps per
// transaction unless told.
const DefaultRotateBatchSize = 500

// maxRotatePasses bounds how often RotateKeys goes over the table again
// for rows that a concurrent write changed under it.
const maxRotatePasses = 5

// RotateOptions tune RotateKeys; zero values take the defaults.
type RotateOptions struct {
	// BatchSize is how many data keys each transaction re-wraps;
	// DefaultRotateBatchSize if 0.
	BatchSize int
	// Progress, if not nil, is called after every batch with how many of
	// the total data keys have been dealt with (done never exceeds total).
	Progress func(done, total int)
}

// RotateResult says what RotateKeys did.
type RotateResult struct {
	CurrentKeyID   string // the master key the data keys are now sealed under
	Total          int    // data keys under other master keys when it began
	AlreadyCurrent int    // data keys under the current master key when it began
	Rotated        int    // data keys this run re-wrapped
	// Raced counts swaps that lost to a concurrent write of the same
	// secret, finished or under way; the row was read again in a later
	// pass.
	Raced int
	// Remaining counts, by master key id, the data keys still under
	// another master key when it ended: none after a complete rotation.
	Remaining map[string]int
	// DroppedChecks are the key ids whose key check value was deleted
	// because no data key is sealed under them any more.
	DroppedChecks []string
}

// RotateKeys re-wraps every data key that is not sealed under the current
// master key, without re-encrypting any value, while the service keeps
// serving. It first runs CheckKeys, so it refuses to start if a data key is
// sealed under a master key the keyring lacks.
//
// It works in batches of opts.BatchSize keys in secret id order, each
// batch one short transaction whose writes are compare-and-swap: a secret
// written since its key was read (a new value, a rename) keeps what was
// written, which is sealed under the current key already, or is read again
// in a later pass. Canceling ctx stops it after the batch in flight, which
// commits; running it again resumes, since it only ever selects data keys
// under other master keys.
//
// When no data key is left under another master key, the key check values
// of the other keys are deleted, and the current key's is the only one.
// It returns an error, with the result so far, if it was stopped, if a data
// key did not open (naming the secret), or if data keys remain under other
// keys at the end (a process still running with the old ENCRYPTION_KEY).
func (s *Service) RotateKeys(ctx context.Context, opts RotateOptions) (RotateResult, error) {
	res := RotateResult{CurrentKeyID: s.keys.CurrentID()}
	if err := s.CheckKeys(ctx); err != nil {
		return res, err
	}
	r, err := s.newRotation(ctx, opts, &res)
	if err != nil {
		return res, err
	}
	if err := r.passes(); err != nil {
		return res, err
	}
	if err := r.remaining(); err != nil {
		return res, err
	}
	// Not `return res, r.dropOtherChecks()`: res must be read after the
	// call has recorded the dropped checks in it.
	err = r.dropOtherChecks()
	return res, err
}

// newRotation counts the data keys to re-wrap into res and reports the
// start to opts.Progress.
func (s *Service) newRotation(ctx context.Context, opts RotateOptions, res *RotateResult) (*rotation, error) {
	size := opts.BatchSize
	if size <= 0 {
		size = DefaultRotateBatchSize
	}
	cur := res.CurrentKeyID
	counts, err := s.store.MasterKeyCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("count data keys: %w", err)
	}
	for id, n := range counts {
		if id == cur {
			res.AlreadyCurrent = n
		} else {
			res.Total += n
		}
	}
	progress := func(done int) {
		if opts.Progress != nil {
			opts.Progress(min(done, res.Total), res.Total)
		}
	}
	progress(0)
	// A batch in flight finishes even when ctx is canceled: ctx is only
	// looked at between batches.
	return &rotation{svc: s, ctx: ctx, work: context.WithoutCancel(ctx), cur: cur, size: size,
		res: res, progress: progress, failed: map[string]error{}}, nil
}

// passes goes over every table of data keys until nothing is left, or
// nothing more this run can do, at most maxRotatePasses times.
func (r *rotation) passes() error {
	for pass := 0; pass < maxRotatePasses; pass++ {
		found, rotated, raced := 0, 0, r.res.Raced
		if len(r.raced) > 0 {
			// The writes a swap lost to end before their rows are read
			// again, or the next pass could lose to them again.
			if err := r.svc.store.AwaitSecretWrites(r.work, r.raced); err != nil {
				return fmt.Errorf("await the writes of %d secrets: %w", len(r.raced), err)
			}
			r.raced = nil
		}
		for _, t := range r.tables() {
			f, n, err := r.rotateTable(t)
			found, rotated = found+f, rotated+n
			if err != nil {
				return err
			}
		}
		// Nothing left, or nothing more this run can do (only keys that
		// do not open are left; a swap that lost to a write is tried again).
		if found == 0 || (rotated == 0 && r.res.Raced == raced) {
			return nil
		}
	}
	return nil
}

// remaining counts into the result the data keys still under another
// master key, reports the end to Progress, and fails if a data key did not
// open or any remain.
func (r *rotation) remaining() error {
	counts, err := r.svc.store.MasterKeyCounts(r.ctx)
	if err != nil {
		return fmt.Errorf("count data keys: %w", err)
	}
	r.res.Remaining = map[string]int{}
	for id, n := range counts {
		if id != r.cur {
			r.res.Remaining[id] = n
		}
	}
	r.progress(r.res.Total)
	if len(r.failed) > 0 {
		ids := make([]string, 0, len(r.failed))
		for id := range r.failed {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		first := r.failed[ids[0]]
		if len(ids) > 10 {
			ids = append(ids[:10], "…")
		}
		return fmt.Errorf("%d data keys did not open and stay under their old master key (%s): %w",
			len(r.failed), strings.Join(ids, ", "), first)
	}
	if len(r.res.Remaining) > 0 {
		return fmt.Errorf("data keys are still sealed under another master key (%s): a process still running with the old ENCRYPTION_KEY may be writing them; restart every process with the new key and run the rotation again",
			describeCounts(r.res.Remaining))
	}
	return nil
}

// dropOtherChecks deletes the key check values of every master key but the
// current one, recording each in the result.
func (r *rotation) dropOtherChecks() error {
	checks, err := r.svc.store.KeyChecks(r.ctx)
	if err != nil {
		return fmt.Errorf("read key checks: %w", err)
	}
	for _, c := range checks {
		if c.KeyID == r.cur {
			continue
		}
		if err := r.svc.store.DeleteKeyCheck(r.ctx, c.KeyID); err != nil {
			return fmt.Errorf("delete key check of master key %s: %w", c.KeyID, err)
		}
		r.res.DroppedChecks = append(r.res.DroppedChecks, c.KeyID)
	}
	return nil
}

// rotation is one run of RotateKeys.
type rotation struct {
	svc      *Service
	ctx      context.Context // canceled: stop before the next batch
	work     context.Context // for the store: a batch in flight finishes
	cur      string
	size     int
	res      *RotateResult
	progress func(done int)
	done     int
	raced    []SealedKey      // the keys of batches whose swaps lost, awaited before the next pass
	failed   map[string]error // what -> why its data key did not open
}

// keyTable is a table of data keys: the secrets, their kept versions, and
// the tokens of oauth2 secrets.
type keyTable struct {
	what string // "secret", "kept version" or "oauth2 token"
	list func(ctx context.Context, notKeyID string, after SealedKey, limit int) ([]SealedKey, error)
	swap func(ctx context.Context, keyID string, swaps []KeySwap) (int, error)
	// aad is what the table's data keys are bound to; dataKeyAAD if nil.
	aad func(userID, secretID string) []byte
}

func (r *rotation) tables() []keyTable {
	st := r.svc.store
	return []keyTable{
		{"secret", func(ctx context.Context, notKeyID string, after SealedKey, limit int) ([]SealedKey, error) {
			return st.SealedKeysOfAllUsers(ctx, notKeyID, after.SecretID, limit)
		}, st.SwapSealedKeysOfAllUsers, nil},
		{"kept version", func(ctx context.Context, notKeyID string, after SealedKey, limit int) ([]SealedKey, error) {
			return st.SealedVersionKeysOfAllUsers(ctx, notKeyID, after.SecretID, after.Version, limit)
		}, st.SwapSealedVersionKeysOfAllUsers, nil},
		{"oauth2 token", func(ctx context.Context, notKeyID string, after SealedKey, limit int) ([]SealedKey, error) {
			return st.SealedOAuth2KeysOfAllUsers(ctx, notKeyID, after.SecretID, limit)
		}, st.SwapSealedOAuth2KeysOfAllUsers, oauth2KeyAAD},
	}
}

// name says which data key k is, for errors.
func (k SealedKey) name() string {
	if k.Version == 0 {
		return "secret " + k.SecretID
	}
	return fmt.Sprintf("secret %s version %d", k.SecretID, k.Version)
}

// rotateTable goes once over the data keys of t not under the current
// key, in batches, and returns how many it found and re-wrapped.
func (r *rotation) rotateTable(t keyTable) (found, rotated int, err error) {
	var after SealedKey
	for {
		if err := r.ctx.Err(); err != nil {
			return found, rotated, fmt.Errorf("key rotation stopped after re-wrapping %d of %d data keys: %w", r.res.Rotated, r.res.Total, err)
		}
		batch, err := t.list(r.work, r.cur, after, r.size)
		if err != nil {
			return found, rotated, fmt.Errorf("read data keys of %ss after %s: %w", t.what, after.name(), err)
		}
		if len(batch) == 0 {
			return found, rotated, nil
		}
		after = batch[len(batch)-1]
		swaps := make([]KeySwap, 0, len(batch))
		for _, k := range batch {
			found++
			aad := dataKeyAAD
			if t.aad != nil {
				aad = t.aad
			}
			sealed, err := r.svc.keys.rewrapKey(k.Sealed, aad(k.UserID, k.SecretID), k.SecretID)
			if err != nil {
				r.failed[k.name()] = err
				continue
			}
			delete(r.failed, k.name())
			swaps = append(swaps, KeySwap{SecretID: k.SecretID, Version: k.Version, Old: k.Sealed, New: sealed})
		}
		n := 0
		if len(swaps) > 0 {
			if n, err = t.swap(r.work, r.cur, swaps); err != nil {
				return found, rotated, fmt.Errorf("re-wrap %d data keys of %ss from %s: %w", len(swaps), t.what, batch[0].name(), err)
			}
		}
		rotated += n
		r.res.Rotated += n
		r.res.Raced += len(swaps) - n
		if n < len(swaps) {
			r.raced = append(r.raced, batch...)
		}
		r.done += len(batch)
		r.progress(r.done)
		if len(batch) < r.size {
			return found, rotated, nil
		}
	}
}

// describeCounts says "3 under master key 1a2b3c4d, 1 under master key
// 5e6f7a8b", in key id order.
func describeCounts(counts map[string]int) string {
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d under master key %s", counts[id], id)
	}
	return strings.Join(parts, ", ")
}

// KeyStatus returns how many data keys each master key id seals, and the id
// of the current master key. Unlike CheckKeys it never fails for a data key
// sealed under a master key the keyring lacks: it counts it.
func (s *Service) KeyStatus(ctx context.Context) (counts map[string]int, current string, err error) {
	counts, err = s.store.MasterKeyCounts(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("count data keys: %w", err)
	}
	return counts, s.keys.CurrentID(), nil
}
