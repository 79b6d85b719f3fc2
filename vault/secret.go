package vault

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Scope says which profiles of its user a secret is given to.
type Scope string

const (
	// ScopeAll gives the secret to every profile of the user.
	ScopeAll Scope = "all"
	// ScopeAgents gives the secret only to the profiles in ProfileIDs, and
	// there it overrides a ScopeAll secret of the same name.
	ScopeAgents Scope = "agents"
)

// Limits of a secret.
const (
	MaxNameLen        = 256
	MaxValueLen       = 64 << 10
	MaxDescriptionLen = 1000
	MaxProfileIDs     = 1000
)

// NamePattern is the rule every secret and env name obeys.
const NamePattern = `^[A-Z_][A-Z0-9_]*$`

var nameRE = regexp.MustCompile(NamePattern)

// Secret is a user's NAME=value secret as stored: its value only ever
// appears sealed. SealedValue is the value under the secret's own data key,
// bound to UserID, ID and Name; SealedKey is that data key under the master
// key MasterKeyID.
type Secret struct {
	ID          string
	UserID      string
	Name        string
	Scope       Scope
	ProfileIDs  []string // sorted; only for ScopeAgents
	Description string
	Version     int // 1 at creation, +1 at every change of the value
	SealedValue []byte
	SealedKey   []byte
	MasterKeyID string
	CreatedAt   time.Time
	UpdatedAt   time.Time

	// Kind is KindValue ("" reads as it) or KindOAuth2 (oauth2.go), whose
	// sealed value is the client secret. It never changes.
	Kind Kind
	// OAuth2 and OAuth2Status are an oauth2 secret's settings and status,
	// filled by the Service's reads and writes (nil otherwise, and in what
	// a store returns).
	OAuth2       *OAuth2Settings
	OAuth2Status *OAuth2Status
}

// SecretInput is what a user gives to create a secret.
type SecretInput struct {
	Name        string
	Value       string
	Scope       Scope // "" means ScopeAll
	ProfileIDs  []string
	Description string

	// Kind "" means KindValue. For KindOAuth2, OAuth2 holds the settings
	// (required) and Value the client secret (may be empty, except for
	// client credentials).
	Kind   Kind
	OAuth2 *OAuth2Settings
}

// SecretPatch changes some fields of a secret; a nil field is left as it is.
// SetProfileIDs says ProfileIDs was given (a nil list then clears it).
type SecretPatch struct {
	Name          *string
	Value         *string
	Scope         *Scope
	ProfileIDs    []string
	SetProfileIDs bool
	Description   *string
	// OAuth2 replaces an oauth2 secret's settings whole; ClientSecret is
	// its new client secret (a new version, as Value is of a value
	// secret). Both are refused for a value secret, and Value for an
	// oauth2 secret.
	OAuth2       *OAuth2Settings
	ClientSecret *string
}

// ValidateName checks a secret or env name against NamePattern and
// MaxNameLen. It never changes case.
func ValidateName(field, name string) error {
	switch {
	case name == "":
		return Invalid(field, "is required")
	case len(name) > MaxNameLen:
		return Invalid(field, "must be at most %d characters", MaxNameLen)
	case !nameRE.MatchString(name):
		return Invalid(field, "must match %s (upper-case letters, digits and underscores, not starting with a digit)", NamePattern)
	}
	return nil
}

// ValidateValue checks a secret value: required, at most 64 KiB, no NUL
// byte. Its error never contains the value.
func ValidateValue(field, value string) error {
	switch {
	case value == "":
		return Invalid(field, "is required and must not be empty")
	case len(value) > MaxValueLen:
		return Invalid(field, "must be at most %d bytes", MaxValueLen)
	case strings.IndexByte(value, 0) >= 0:
		return Invalid(field, "must not contain a NUL byte (it could not be passed as an environment variable)")
	}
	return nil
}

func validateDescription(d string) error {
	switch {
	case len(d) > MaxDescriptionLen:
		return Invalid("description", "must be at most %d bytes", MaxDescriptionLen)
	case !utf8.ValidString(d) || strings.IndexByte(d, 0) >= 0:
		return Invalid("description", "must be valid UTF-8 without NUL bytes")
	}
	return nil
}

// validateScope checks scope and profile ids together and returns the ids
// sorted.
func validateScope(scope Scope, ids []string) ([]string, error) {
	switch scope {
	case ScopeAll:
		if len(ids) > 0 {
			return nil, Invalid("profile_ids", "must not be given with scope %q (it grants every profile); use scope %q to grant some", ScopeAll, ScopeAgents)
		}
		return nil, nil
	case ScopeAgents:
		if len(ids) == 0 {
			return nil, Invalid("profile_ids", "is required and must not be empty with scope %q", ScopeAgents)
		}
		if len(ids) > MaxProfileIDs {
			return nil, Invalid("profile_ids", "must hold at most %d ids", MaxProfileIDs)
		}
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		for i, id := range sorted {
			if i > 0 && id == sorted[i-1] {
				return nil, Invalid("profile_ids", "must not contain %s twice", truncate(id, 64))
			}
		}
		return sorted, nil
	default:
		return nil, Invalid("scope", "must be %q or %q", ScopeAll, ScopeAgents)
	}
}

// conflictsWith reports whether s and other, two secrets of one user, would
// make some profile's value of a name ambiguous: two `all` secrets of one
// name, or two `agents` secrets of one name granting one profile.
func (s *Secret) conflictsWith(other *Secret) bool {
	if s.ID == other.ID || s.Name != other.Name || s.Scope != other.Scope {
		return false
	}
	if s.Scope == ScopeAll {
		return true
	}
	for _, id := range s.ProfileIDs {
		if _, found := slices.BinarySearch(other.ProfileIDs, id); found {
			return true
		}
	}
	return false
}

// grants reports whether s is given to the profile.
func (s *Secret) grants(profileID string) bool {
	if s.Scope == ScopeAll {
		return true
	}
	_, found := slices.BinarySearch(s.ProfileIDs, profileID)
	return found
}

// CreateSecret validates in, seals its value and stores it. Returns
// EINVALID if a rule is broken, ECONFLICT if the name is taken for a
// profile it would grant or the user holds the most secrets allowed.
func (s *Service) CreateSecret(ctx context.Context, userID string, in SecretInput) (*Secret, error) {
	if in.Scope == "" {
		in.Scope = ScopeAll
	}
	if in.Kind == "" {
		in.Kind = KindValue
	}
	if err := s.validateName(in.Name); err != nil {
		return nil, err
	}
	if err := validateKindInput(in); err != nil {
		return nil, err
	}
	ids, err := validateScope(in.Scope, in.ProfileIDs)
	if err != nil {
		return nil, err
	}
	if err := validateDescription(in.Description); err != nil {
		return nil, err
	}
	now := s.timestamp()
	sec := &Secret{
		ID: NewID(PrefixSecret), UserID: userID, Name: in.Name, Scope: in.Scope, ProfileIDs: ids,
		Description: in.Description, Version: 1, CreatedAt: now, UpdatedAt: now, Kind: in.Kind,
	}
	if err := s.keys.sealSecret(sec, in.Value); err != nil {
		return nil, fmt.Errorf("seal secret %s: %w", sec.ID, err)
	}
	err = s.store.Update(ctx, userID, func(tx Tx) error {
		// The quota counts the user's secrets: creates take turns.
		if err := tx.LockUser(ctx); err != nil {
			return err
		}
		n, err := tx.CountSecrets(ctx)
		if err != nil {
			return fmt.Errorf("count secrets: %w", err)
		}
		if n >= s.maxSecrets {
			return Errorf(ECONFLICT, "secret limit reached: a user holds at most %d secrets", s.maxSecrets)
		}
		if err := checkGrants(ctx, tx, sec); err != nil {
			return err
		}
		if err := tx.CreateSecret(ctx, sec); err != nil {
			return err
		}
		if err := createOAuth2(ctx, tx, sec, in.OAuth2, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionSecretCreate, TargetSecret, sec.ID, secretDetails(sec))
	})
	if err != nil {
		return nil, fmt.Errorf("create secret %s: %w", sec.Name, err)
	}
	return sec, nil
}

func (s *Service) validateName(name string) error {
	if err := ValidateName("name", name); err != nil {
		return err
	}
	return s.names.check("name", name)
}

// checkGrants checks, inside the write transaction, that every profile sec
// grants is the user's and that no profile would get two secrets of its
// name from one scope.
func checkGrants(ctx context.Context, tx Tx, sec *Secret) error {
	if sec.Scope == ScopeAgents {
		if err := checkProfiles(ctx, tx, sec.ProfileIDs); err != nil {
			return err
		}
	}
	same, err := tx.SecretsNamed(ctx, sec.Name)
	if err != nil {
		return fmt.Errorf("read secrets named %s: %w", sec.Name, err)
	}
	for _, other := range same {
		if sec.conflictsWith(other) {
			if sec.Scope == ScopeAll {
				return &Error{Code: ECONFLICT, Field: "name", Message: fmt.Sprintf("name: secret %s already holds %s for all profiles", other.ID, sec.Name)}
			}
			return &Error{Code: ECONFLICT, Field: "profile_ids", Message: fmt.Sprintf("profile_ids: secret %s already grants %s to one of these profiles", other.ID, sec.Name)}
		}
	}
	return nil
}

// UpdateSecret applies p to a secret. A changed value gets a fresh data key
// and a new Version; a new name reseals the value bound to it. Returns
// ENOTFOUND, EINVALID or ECONFLICT as CreateSecret does.
func (s *Service) UpdateSecret(ctx context.Context, userID, id string, p SecretPatch) (*Secret, error) {
	if err := s.validatePatch(p); err != nil {
		return nil, err
	}
	var sec *Secret
	update := s.store.Update
	if p.Name == nil && p.Scope == nil && !p.SetProfileIDs && p.OAuth2 == nil {
		// A new value or description: a write of this secret alone, which
		// may share its commit with other writes.
		update = func(ctx context.Context, userID string, fn func(Tx) error) error {
			return updateLocked(ctx, s.store, userID, id, fn)
		}
	}
	err := update(ctx, userID, func(tx Tx) error {
		// The kept versions are read with the secret, in one round trip,
		// for a new value (storeNewVersion).
		cur, kept, err := lockSecretVersions(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := validateKindPatch(cur.Kind, p); err != nil {
			return err
		}
		if cur.Kind == KindOAuth2 && p.ClientSecret != nil {
			p.Value = p.ClientSecret
		}
		next, err := patched(cur, p)
		if err != nil {
			return err
		}
		switch {
		case p.Value != nil:
			err = s.sealNewVersion(next, cur, *p.Value)
		case next.Name != cur.Name:
			err = s.keys.rewrapSecret(next, cur.Name)
		}
		if err != nil {
			return err
		}
		if grantsChanged(cur, next) {
			if err := checkGrants(ctx, tx, next); err != nil {
				return err
			}
		}
		if p.Value != nil {
			err = s.storeNewVersion(ctx, tx, cur, kept, next)
		} else {
			next.UpdatedAt = s.timestamp()
			err = tx.UpdateSecret(ctx, next, grantsChanged(cur, next))
		}
		if err != nil {
			return err
		}
		changed := secretChanges(cur, next, p.Value != nil)
		if next.Kind == KindOAuth2 {
			if changed, err = s.patchOAuth2(ctx, tx, next, p, changed); err != nil {
				return err
			}
		}
		sec = next
		details := secretDetails(next)
		details["changed"] = changed
		return s.audit(ctx, tx, userID, ActionSecretUpdate, TargetSecret, id, details)
	})
	if err != nil {
		return nil, fmt.Errorf("update secret %s: %w", id, err)
	}
	return sec, nil
}

// grantsChanged reports whether next differs from cur in what the grant
// rule (checkGrants) judges: its name, scope or profiles. A change of value
// or description alone cannot break the rule, which held when cur was
// written and is checked again by every write to another secret.
func grantsChanged(cur, next *Secret) bool {
	return cur.Name != next.Name || cur.Scope != next.Scope || !slices.Equal(cur.ProfileIDs, next.ProfileIDs)
}

// validatePatch checks each field a patch sets, before any transaction.
func (s *Service) validatePatch(p SecretPatch) error {
	if p.Name != nil {
		if err := s.validateName(*p.Name); err != nil {
			return err
		}
	}
	if p.Value != nil && len(*p.Value) > MaxValueLen {
		// The rest of a value's rule depends on the kind (validateKindPatch).
		return Invalid("value", "must be at most %d bytes", MaxValueLen)
	}
	if p.ClientSecret != nil && len(*p.ClientSecret) > MaxValueLen {
		return Invalid("client_secret", "must be at most %d bytes", MaxValueLen)
	}
	if p.OAuth2 != nil {
		if err := p.OAuth2.Validate("oauth2."); err != nil {
			return err
		}
	}
	if p.Description != nil {
		if err := validateDescription(*p.Description); err != nil {
			return err
		}
	}
	if p.Scope != nil && *p.Scope != ScopeAll && *p.Scope != ScopeAgents {
		return Invalid("scope", "must be %q or %q", ScopeAll, ScopeAgents)
	}
	return nil
}

// patched returns cur with p's name, description, scope and profiles
// applied; its value is still cur's. A scope changed without profile ids
// keeps the profiles only from agents to agents.
func patched(cur *Secret, p SecretPatch) (*Secret, error) {
	next := *cur
	if p.Scope != nil || p.SetProfileIDs {
		if p.Scope != nil {
			next.Scope = *p.Scope
		}
		ids := p.ProfileIDs
		if !p.SetProfileIDs {
			ids = nil
			if next.Scope == ScopeAgents && cur.Scope == ScopeAgents {
				ids = cur.ProfileIDs
			}
		}
		var err error
		if next.ProfileIDs, err = validateScope(next.Scope, ids); err != nil {
			return nil, err
		}
	}
	if p.Name != nil {
		next.Name = *p.Name
	}
	if p.Description != nil {
		next.Description = *p.Description
	}
	return &next, nil
}

// sealNewVersion seals value into next as the version after cur's.
func (s *Service) sealNewVersion(next, cur *Secret, value string) error {
	next.Version = cur.Version + 1
	if err := s.keys.sealSecret(next, value); err != nil {
		return fmt.Errorf("seal secret: %w", err)
	}
	return nil
}

// storeNewVersion replaces cur by next, whose value sealNewVersion sealed,
// and keeps cur's value as an earlier version (history.go); kept are cur's
// kept versions, newest first.
func (s *Service) storeNewVersion(ctx context.Context, tx Tx, cur *Secret, kept []SecretVersion, next *Secret) error {
	next.UpdatedAt = s.timestamp()
	if err := s.keepVersion(ctx, tx, cur, kept, next.UpdatedAt); err != nil {
		return err
	}
	return tx.UpdateSecret(ctx, next, grantsChanged(cur, next))
}

// DeleteSecret deletes a secret. Returns ENOTFOUND if it does not exist.
func (s *Service) DeleteSecret(ctx context.Context, userID, id string) error {
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		// Read first: the event names what was deleted.
		cur, err := lockSecret(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteSecret(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionSecretDelete, TargetSecret, id, secretDetails(cur))
	})
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", id, err)
	}
	return nil
}

// lockSecret takes a secret's lock and then reads it, for a write that
// writes back what it read. A rename or a new grant needs no more lock:
// the database's unique indexes refuse a name taken meanwhile.
func lockSecret(ctx context.Context, tx Tx, id string) (*Secret, error) {
	if err := tx.Lock(ctx, id); err != nil {
		return nil, err
	}
	return tx.Secret(ctx, id)
}

// lockSecretVersions is lockSecret for a write that may keep the secret's
// value as a version: it reads the kept versions too.
func lockSecretVersions(ctx context.Context, tx Tx, id string) (*Secret, []SecretVersion, error) {
	if err := tx.Lock(ctx, id); err != nil {
		return nil, nil, err
	}
	return tx.SecretAndVersions(ctx, id)
}

// Secret returns a secret, sealed. Returns ENOTFOUND if it does not exist.
func (s *Service) Secret(ctx context.Context, userID, id string) (*Secret, error) {
	sec, err := view(ctx, s.store, userID, func(tx Tx) (*Secret, error) { return tx.Secret(ctx, id) })
	if err == nil {
		err = s.withOAuth2(ctx, userID, sec)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", id, err)
	}
	return sec, nil
}

// Secrets lists the user's secrets, sealed, by name. Returns EINVALID for a
// bad limit, query or cursor.
func (s *Service) Secrets(ctx context.Context, userID string, o ListOptions) (Page[*Secret], error) {
	p, err := listPage(ctx, s.store, userID, o, Tx.Secrets, func(x *Secret) Cursor { return Cursor{x.Name, x.ID} })
	if err == nil {
		err = s.withOAuth2(ctx, userID, p.Items...)
	}
	if err != nil {
		return p, fmt.Errorf("list secrets: %w", err)
	}
	return p, nil
}

// checkProfiles returns EINVALID unless every id is one of the user's
// profiles. An import checks once, rather than for each of its lines.
func checkProfiles(ctx context.Context, tx Tx, ids []string) error {
	found, err := tx.ExistingProfileIDs(ctx, ids)
	if err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}
	for _, id := range ids {
		if !slices.Contains(found, id) {
			return Invalid("profile_ids", "%s is not one of your profiles", truncate(id, 64))
		}
	}
	return nil
}
