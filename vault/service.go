package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultMaxSecrets is how many secrets a user may hold unless configured.
const DefaultMaxSecrets = 1000

// Page limits shared by every list.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// Service holds the rules of the vault on top of a Store. It is the only
// code that sees a plaintext value, and it hands values out only through
// GetDecryptedForProfile.
type Service struct {
	store      Store
	keys       *Keyring
	maxSecrets int
	names      NamePolicy
	now        func() time.Time

	// keepVersions is how many earlier values of a secret are kept
	// (history.go).
	keepVersions int
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	MaxSecrets int              // per user; DefaultMaxSecrets if 0
	Names      NamePolicy       // locked and allowed names
	Now        func() time.Time // time.Now if nil

	// KeepVersions is how many earlier values of each secret are kept;
	// DefaultKeepVersions if 0.
	KeepVersions int
}

// NewService returns a service over store, sealing under keys.
func NewService(store Store, keys *Keyring, opts Options) *Service {
	s := &Service{store: store, keys: keys, maxSecrets: opts.MaxSecrets, names: opts.Names, now: opts.Now}
	if s.maxSecrets <= 0 {
		s.maxSecrets = DefaultMaxSecrets
	}
	if s.keepVersions = opts.KeepVersions; s.keepVersions <= 0 {
		s.keepVersions = DefaultKeepVersions
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CheckKeys proves at start-up that the keyring opens what the store holds:
// the stored key check value must open under a configured key, and every
// data key must be sealed under a configured key. A fresh store gets a key
// check value for the current key.
func (s *Service) CheckKeys(ctx context.Context) error {
	checks, err := s.store.KeyChecks(ctx)
	if err != nil {
		return fmt.Errorf("read key checks: %w", err)
	}
	var opened, haveCurrent bool
	var stored []string
	for _, c := range checks {
		stored = append(stored, c.KeyID)
		if !s.keys.Has(c.KeyID) {
			continue
		}
		if err := s.keys.openKeyCheck(c); err != nil {
			return fmt.Errorf("key check for master key %s does not open: %w", c.KeyID, err)
		}
		opened = true
		haveCurrent = haveCurrent || c.KeyID == s.keys.CurrentID()
	}
	counts, err := s.store.MasterKeyCounts(ctx)
	if err != nil {
		return fmt.Errorf("count data keys: %w", err)
	}
	if len(checks) > 0 && !opened {
		msg := fmt.Sprintf("ENCRYPTION_KEY is not the key this database was sealed with: the configured key has id %s, the database was sealed with key id %s",
			s.keys.CurrentID(), strings.Join(stored, ", "))
		if len(counts) > 0 {
			// Which keys the rows need, and how many need each.
			msg += "; its data keys: " + describeCounts(counts)
		}
		return errors.New(msg)
	}
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !s.keys.Has(id) {
			return fmt.Errorf("%d data keys are sealed under master key %s, which is not configured: add it to ENCRYPTION_KEY_PREVIOUS", counts[id], id)
		}
	}
	if !haveCurrent {
		if err := s.store.PutKeyCheck(ctx, s.keys.newKeyCheck()); err != nil {
			return fmt.Errorf("store key check: %w", err)
		}
	}
	return nil
}

// CreateUser creates a user and returns it with its first API token, which
// is shown only this once.
func (s *Service) CreateUser(ctx context.Context, name string) (*User, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxProfileNameLen || !printable(name) {
		return nil, "", Invalid("name", "is required: at most %d printable characters", MaxProfileNameLen)
	}
	now := s.timestamp()
	u := &User{ID: NewID(PrefixUser), Name: name, CreatedAt: now}
	t, token := newToken(u.ID, now)
	events := []*AuditEvent{
		s.event(ctx, u.ID, ActionUserCreate, TargetUser, u.ID, map[string]any{"name": u.Name}),
		s.event(ctx, u.ID, ActionTokenCreate, TargetToken, t.ID, nil),
	}
	if err := s.store.CreateUser(ctx, u, t, events...); err != nil {
		return nil, "", fmt.Errorf("create user: %w", err)
	}
	return u, token, nil
}

// CreateToken makes a new API token for an existing user. Returns
// ENOTFOUND if the user does not exist.
func (s *Service) CreateToken(ctx context.Context, userID string) (string, error) {
	t, token := newToken(userID, s.timestamp())
	if err := s.store.CreateToken(ctx, t, s.event(ctx, userID, ActionTokenCreate, TargetToken, t.ID, nil)); err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return token, nil
}

var errBadToken = Errorf(EUNAUTHORIZED, "missing or invalid API token")

// Authenticate returns the user id and token id a token belongs to.
// Returns EUNAUTHORIZED, with one message for every cause, otherwise.
func (s *Service) Authenticate(ctx context.Context, token string) (userID, tokenID string, err error) {
	id, secret, ok := splitToken(token)
	if !ok {
		return "", "", errBadToken
	}
	t, err := s.store.Token(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return "", "", s.authFailed(ctx, id, "unknown token")
	} else if err != nil {
		return "", "", fmt.Errorf("read token %s: %w", id, err)
	}
	if !t.matches(secret) {
		return "", "", s.authFailed(ctx, id, "wrong secret")
	}
	return t.UserID, t.ID, nil
}

// Ping checks that the store answers.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// CreateSecret validates in, seals its value and stores it. Returns
// EINVALID if a rule is broken, ECONFLICT if the name is taken for a
// profile it would grant or the user holds the most secrets allowed.
func (s *Service) CreateSecret(ctx context.Context, userID string, in SecretInput) (*Secret, error) {
	if in.Scope == "" {
		in.Scope = ScopeAll
	}
	if err := s.validateName(in.Name); err != nil {
		return nil, err
	}
	if err := ValidateValue("value", in.Value); err != nil {
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
		Description: in.Description, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.keys.sealSecret(sec, in.Value); err != nil {
		return nil, fmt.Errorf("seal secret %s: %w", sec.ID, err)
	}
	err = s.store.Update(ctx, userID, func(tx Tx) error {
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
		found, err := tx.ExistingProfileIDs(ctx, sec.ProfileIDs)
		if err != nil {
			return fmt.Errorf("read profiles: %w", err)
		}
		for _, id := range sec.ProfileIDs {
			if !slices.Contains(found, id) {
				return Invalid("profile_ids", "%s is not one of your profiles", truncate(id, 64))
			}
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
	if p.Name != nil {
		if err := s.validateName(*p.Name); err != nil {
			return nil, err
		}
	}
	if p.Value != nil {
		if err := ValidateValue("value", *p.Value); err != nil {
			return nil, err
		}
	}
	if p.Description != nil {
		if err := validateDescription(*p.Description); err != nil {
			return nil, err
		}
	}
	if p.Scope != nil && *p.Scope != ScopeAll && *p.Scope != ScopeAgents {
		return nil, Invalid("scope", "must be %q or %q", ScopeAll, ScopeAgents)
	}
	var sec *Secret
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		cur, err := tx.Secret(ctx, id)
		if err != nil {
			return err
		}
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
			if next.ProfileIDs, err = validateScope(next.Scope, ids); err != nil {
				return err
			}
		}
		if p.Name != nil {
			next.Name = *p.Name
		}
		if p.Description != nil {
			next.Description = *p.Description
		}
		switch {
		case p.Value != nil:
			next.Version++
			if err := s.keys.sealSecret(&next, *p.Value); err != nil {
				return fmt.Errorf("seal secret: %w", err)
			}
		case next.Name != cur.Name:
			if err := s.keys.rewrapSecret(&next, cur.Name); err != nil {
				return err
			}
		}
		if err := checkGrants(ctx, tx, &next); err != nil {
			return err
		}
		next.UpdatedAt = s.timestamp()
		if p.Value != nil {
			// The value it replaces is kept as a version (history.go).
			if err := s.keepVersion(ctx, tx, cur, next.UpdatedAt); err != nil {
				return err
			}
		}
		if err := tx.UpdateSecret(ctx, &next); err != nil {
			return err
		}
		sec = &next
		details := secretDetails(&next)
		details["changed"] = secretChanges(cur, &next, p.Value != nil)
		return s.audit(ctx, tx, userID, ActionSecretUpdate, TargetSecret, id, details)
	})
	if err != nil {
		return nil, fmt.Errorf("update secret %s: %w", id, err)
	}
	return sec, nil
}

// DeleteSecret deletes a secret. Returns ENOTFOUND if it does not exist.
func (s *Service) DeleteSecret(ctx context.Context, userID, id string) error {
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		// Read first: the event names what was deleted.
		cur, err := tx.Secret(ctx, id)
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

// Secret returns a secret, sealed. Returns ENOTFOUND if it does not exist.
func (s *Service) Secret(ctx context.Context, userID, id string) (*Secret, error) {
	var sec *Secret
	err := s.store.View(ctx, userID, func(tx Tx) (err error) {
		sec, err = tx.Secret(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", id, err)
	}
	return sec, nil
}

// Page is one page of a list and the cursor of the next, "" on the last.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// ListOptions are a list request as the user gives it.
type ListOptions struct {
	Query  string
	Cursor string
	Limit  int // 0 means DefaultPageLimit
}

// Cursor is a position in a list: the sort key and id of the last item of
// the previous page. The key is the name for secrets and profiles.
type Cursor struct {
	Key string
	ID  string
}

func (c Cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.Key + "\x00" + c.ID))
}

// Filter checks the options and turns them into a store's ListFilter.
// Returns EINVALID for a bad limit, query or cursor.
func (o ListOptions) Filter() (ListFilter, error) {
	f := ListFilter{Query: o.Query, Limit: o.Limit}
	if f.Limit == 0 {
		f.Limit = DefaultPageLimit
	}
	if f.Limit < 1 || f.Limit > MaxPageLimit {
		return f, Invalid("limit", "must be between 1 and %d", MaxPageLimit)
	}
	if len(o.Query) > MaxNameLen || strings.IndexByte(o.Query, 0) >= 0 || !utf8.ValidString(o.Query) {
		return f, Invalid("q", "must be valid UTF-8 of at most %d characters without NUL bytes", MaxNameLen)
	}
	if o.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(o.Cursor)
		name, id, ok := strings.Cut(string(raw), "\x00")
		if err != nil || !ok || id == "" {
			return f, Invalid("cursor", "is not a cursor this API returned")
		}
		f.After = &Cursor{Key: name, ID: id}
	}
	return f, nil
}

// NewPage cuts items, fetched with limit+1, to a page of limit and the
// cursor of the next page, if there is one.
func NewPage[T any](items []T, limit int, cursor func(T) Cursor) Page[T] {
	p := Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = cursor(items[limit-1]).encode()
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

// Secrets lists the user's secrets, sealed, by name. Returns EINVALID for a
// bad limit, query or cursor.
func (s *Service) Secrets(ctx context.Context, userID string, o ListOptions) (Page[*Secret], error) {
	f, err := o.Filter()
	if err != nil {
		return Page[*Secret]{}, err
	}
	var list []*Secret
	f.Limit++ // one more tells whether a next page exists
	err = s.store.View(ctx, userID, func(tx Tx) error {
		list, err = tx.Secrets(ctx, f)
		return err
	})
	if err != nil {
		return Page[*Secret]{}, fmt.Errorf("list secrets: %w", err)
	}
	return NewPage(list, f.Limit-1, func(x *Secret) Cursor { return Cursor{x.Name, x.ID} }), nil
}

// CreateProfile validates in and stores a new profile. Returns EINVALID if
// a rule is broken, ECONFLICT if the user has a profile of that name.
func (s *Service) CreateProfile(ctx context.Context, userID string, in ProfileInput) (*Profile, error) {
	now := s.timestamp()
	p := &Profile{
		ID: NewID(PrefixProfile), UserID: userID, Name: strings.TrimSpace(in.Name), Image: in.Image,
		Command: nonNil(in.Command), SetupCommands: nonNil(in.SetupCommands), Env: in.Env,
		CreatedAt: now, UpdatedAt: now,
	}
	if p.Env == nil {
		p.Env = map[string]string{}
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		if err := tx.CreateProfile(ctx, p); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionProfileCreate, TargetProfile, p.ID, map[string]any{"name": p.Name, "image": p.Image})
	})
	if err != nil {
		return nil, fmt.Errorf("create profile %s: %w", p.ID, err)
	}
	return p, nil
}

// UpdateProfile applies pt to a profile. Returns ENOTFOUND, EINVALID or
// ECONFLICT as CreateProfile does.
func (s *Service) UpdateProfile(ctx context.Context, userID, id string, pt ProfilePatch) (*Profile, error) {
	var out *Profile
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		cur, err := tx.Profile(ctx, id)
		if err != nil {
			return err
		}
		p := *cur
		if pt.Name != nil {
			p.Name = strings.TrimSpace(*pt.Name)
		}
		if pt.Image != nil {
			p.Image = *pt.Image
		}
		if pt.Command != nil {
			p.Command = nonNil(*pt.Command)
		}
		if pt.SetupCommands != nil {
			p.SetupCommands = nonNil(*pt.SetupCommands)
		}
		if pt.Env != nil {
			p.Env = *pt.Env
			if p.Env == nil {
				p.Env = map[string]string{}
			}
		}
		if err := p.validate(); err != nil {
			return err
		}
		p.UpdatedAt = s.timestamp()
		if err := tx.UpdateProfile(ctx, &p); err != nil {
			return err
		}
		out = &p
		return s.audit(ctx, tx, userID, ActionProfileUpdate, TargetProfile, id,
			map[string]any{"name": p.Name, "image": p.Image, "changed": profileChanges(cur, &p)})
	})
	if err != nil {
		return nil, fmt.Errorf("update profile %s: %w", id, err)
	}
	return out, nil
}

// DeleteProfile deletes a profile. Secrets that granted only it grant
// nobody afterwards; no scope ever widens. Returns ENOTFOUND if it does not
// exist.
func (s *Service) DeleteProfile(ctx context.Context, userID, id string) error {
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		// Read first: the event names what was deleted.
		cur, err := tx.Profile(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteProfile(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionProfileDelete, TargetProfile, id, map[string]any{"name": cur.Name, "image": cur.Image})
	})
	if err != nil {
		return fmt.Errorf("delete profile %s: %w", id, err)
	}
	return nil
}

// Profile returns a profile. Returns ENOTFOUND if it does not exist.
func (s *Service) Profile(ctx context.Context, userID, id string) (*Profile, error) {
	var p *Profile
	err := s.store.View(ctx, userID, func(tx Tx) (err error) {
		p, err = tx.Profile(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read profile %s: %w", id, err)
	}
	return p, nil
}

// Profiles lists the user's profiles by name. Returns EINVALID for a bad
// limit, query or cursor.
func (s *Service) Profiles(ctx context.Context, userID string, o ListOptions) (Page[*Profile], error) {
	f, err := o.Filter()
	if err != nil {
		return Page[*Profile]{}, err
	}
	var list []*Profile
	f.Limit++
	err = s.store.View(ctx, userID, func(tx Tx) error {
		list, err = tx.Profiles(ctx, f)
		return err
	})
	if err != nil {
		return Page[*Profile]{}, fmt.Errorf("list profiles: %w", err)
	}
	return NewPage(list, f.Limit-1, func(x *Profile) Cursor { return Cursor{x.Name, x.ID} }), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
