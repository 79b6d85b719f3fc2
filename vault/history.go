package vault

import (
	"context"
	"fmt"
	"time"
)

// Secret history. Each change of a secret's value (UpdateSecret with a
// value, RollbackSecret) keeps the value it replaces as a numbered version,
// sealed as it was, and deletes all but the newest KeepVersions in the same
// transaction. A rename or any other change keeps nothing: the current value
// is resealed for its new name, and each kept version keeps the name it was
// sealed under, which its AAD binds, so that it still opens.

// DefaultKeepVersions is how many earlier values of each secret are kept
// unless configured.
const DefaultKeepVersions = 10

// SecretVersion describes one version of a secret's value: never the value.
type SecretVersion struct {
	Version int
	// CreatedAt is when the value was saved; zero if not known (a value
	// saved before history was kept).
	CreatedAt time.Time
	// ActorTokenID is the API token that saved the value; "" if not known
	// (the first value of a secret, or a change made without a token).
	ActorTokenID string
	// ReplacedAt is when a later value replaced this one; zero for the
	// current version.
	ReplacedAt time.Time
	// ReplacedByTokenID is the API token of that change; "" if not known.
	ReplacedByTokenID string
	// Current is true for the secret's current value.
	Current bool
}

// KeptVersion is an earlier value of a secret as a store keeps it: sealed
// under its own data key, bound to UserID, SecretID and Name, the name the
// secret had when it was sealed; the data key is sealed under master key
// MasterKeyID. Its columns mirror those of a secret.
type KeptVersion struct {
	SecretID          string
	UserID            string
	Version           int
	Name              string
	SealedValue       []byte
	SealedKey         []byte
	MasterKeyID       string
	CreatedAt         time.Time // zero if not known
	ActorTokenID      string    // "" if not known
	ReplacedAt        time.Time
	ReplacedByTokenID string // "" if not known
}

// Info returns what may be shown of k.
func (k *KeptVersion) Info() SecretVersion {
	return SecretVersion{
		Version: k.Version, CreatedAt: k.CreatedAt, ActorTokenID: k.ActorTokenID,
		ReplacedAt: k.ReplacedAt, ReplacedByTokenID: k.ReplacedByTokenID,
	}
}

// sealed returns k as a secret whose sealed value and data key are k's,
// so that the keyring opens it under k's own name.
func (k *KeptVersion) sealed() *Secret {
	return &Secret{ID: k.SecretID, UserID: k.UserID, Name: k.Name, SealedValue: k.SealedValue, SealedKey: k.SealedKey, MasterKeyID: k.MasterKeyID}
}

// currentVersion describes the current value of sec, given its kept
// versions newest first: the newest one, if it is the version just before,
// says when and by whom it was replaced, which is when the current value was
// saved.
func currentVersion(sec *Secret, kept []SecretVersion) SecretVersion {
	v := SecretVersion{Version: sec.Version, Current: true}
	switch {
	case len(kept) > 0 && kept[0].Version == sec.Version-1:
		v.CreatedAt, v.ActorTokenID = kept[0].ReplacedAt, kept[0].ReplacedByTokenID
	case sec.Version == 1:
		v.CreatedAt = sec.CreatedAt
	}
	return v
}

// keepVersion keeps the value of cur, about to be replaced by a change made
// at now, as a version, and deletes the versions beyond the newest
// s.keepVersions; kept are cur's kept versions, newest first, read under
// its lock (lockSecretVersions). It runs inside the transaction of the change.
func (s *Service) keepVersion(ctx context.Context, tx Tx, cur *Secret, kept []SecretVersion, now time.Time) error {
	info := currentVersion(cur, kept)
	v := &KeptVersion{
		SecretID: cur.ID, UserID: cur.UserID, Version: cur.Version, Name: cur.Name,
		SealedValue: cur.SealedValue, SealedKey: cur.SealedKey, MasterKeyID: cur.MasterKeyID,
		CreatedAt: info.CreatedAt, ActorTokenID: info.ActorTokenID,
		ReplacedAt: now, ReplacedByTokenID: actorTokenID(ctx),
	}
	if err := tx.KeepVersion(ctx, v); err != nil {
		return fmt.Errorf("keep version %d: %w", cur.Version, err)
	}
	if old := beyondKept(kept, s.keepVersions); len(old) > 0 {
		if err := tx.DeleteVersions(ctx, cur.ID, old); err != nil {
			return fmt.Errorf("prune versions: %w", err)
		}
	}
	return nil
}

// beyondKept returns the versions of kept (newest first) that fall beyond
// the newest keep once one more version is kept before them: those that
// keepVersion deletes. Naming them lets a store delete them by key, where
// deleting every version below a bound would read the secret's deleted
// versions that its indexes still hold.
func beyondKept(kept []SecretVersion, keep int) []int {
	var out []int
	for i, v := range kept {
		if i+1 >= keep {
			out = append(out, v.Version)
		}
	}
	return out
}

// SecretVersions lists the versions of a secret's value, newest first: the
// current one (Current true), then the kept earlier ones. It never returns
// a value. Returns ENOTFOUND if the secret does not exist.
func (s *Service) SecretVersions(ctx context.Context, userID, id string) ([]SecretVersion, error) {
	var out []SecretVersion
	err := s.store.View(ctx, userID, func(tx Tx) error {
		sec, err := tx.Secret(ctx, id)
		if err != nil {
			return err
		}
		kept, err := tx.SecretVersions(ctx, id)
		if err != nil {
			return fmt.Errorf("read versions: %w", err)
		}
		out = append(make([]SecretVersion, 0, len(kept)+1), currentVersion(sec, kept))
		out = append(out, kept...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of secret %s: %w", id, err)
	}
	return out, nil
}

// RollbackSecret makes the value of a kept version current again, as a
// new version (the current one plus one) sealed under a fresh data key for
// the secret's current name; the value it replaces is kept as a version in
// turn. Only the value changes: name, scope, grants and description stay.
// Returns ENOTFOUND if the secret does not exist, EINVALID (field
// "version") if it keeps no such version or version is the current one.
func (s *Service) RollbackSecret(ctx context.Context, userID, id string, version int) (*Secret, error) {
	if version < 1 {
		return nil, Invalid("version", "must be a version number, 1 or more")
	}
	var sec *Secret
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		cur, versions, err := lockSecretVersions(ctx, tx, id)
		if err != nil {
			return err
		}
		if version == cur.Version {
			return Invalid("version", "%d is the current version", version)
		}
		kept, err := tx.KeptVersion(ctx, id, version)
		if ErrorCode(err) == ENOTFOUND {
			return Invalid("version", "this secret keeps no version %d (it keeps the last %d earlier values)", version, s.keepVersions)
		} else if err != nil {
			return fmt.Errorf("read version %d: %w", version, err)
		}
		value, err := s.keys.openSecret(kept.sealed())
		if err != nil {
			return fmt.Errorf("open version %d: %w", version, err)
		}
		next := *cur
		if err := s.sealNewVersion(&next, cur, value); err != nil {
			return err
		}
		if err := s.storeNewVersion(ctx, tx, cur, versions, &next); err != nil {
			return err
		}
		sec = &next
		details := secretDetails(&next)
		details["restored_version"] = version
		return s.audit(ctx, tx, userID, ActionSecretRollback, TargetSecret, id, details)
	})
	if err != nil {
		return nil, fmt.Errorf("roll back secret %s to version %d: %w", id, version, err)
	}
	return sec, nil
}

// actorTokenID returns the id of the API token that makes the change ctx
// carries, "" if none.
func actorTokenID(ctx context.Context) string { return ActorFrom(ctx).TokenID }
