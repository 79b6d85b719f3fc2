package vault

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a profile.
const (
	MaxProfileNameLen = 100
	MaxImageLen       = 512
	MaxArgs           = 256
	MaxProfileEnv     = 256
	maxArgsBytes      = 64 << 10
)

// Profile is an agent profile: what a task on it runs, with which
// non-secret env.
type Profile struct {
	ID            string
	UserID        string
	Name          string
	Image         string
	Command       []string          // argv; empty means the image's own
	SetupCommands []string          // shell lines run before Command
	Env           map[string]string // non-secret NAME -> value
	Sandbox       Sandbox           // what its containers ask beyond the operator's defaults
	// RequiredSecrets are the names its tasks need a value for before
	// they start (required_secrets.go); never nil once read.
	RequiredSecrets []RequiredSecret
	// OnSecretChange is OnSecretChangeKeep or OnSecretChangeRestart
	// (secret_change.go).
	OnSecretChange string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ProfileInput is what a user gives to create a profile.
type ProfileInput struct {
	Name          string
	Image         string
	Command       []string
	SetupCommands []string
	Env           map[string]string
	Sandbox       Sandbox
	// RequiredSecrets: see Profile.
	RequiredSecrets []RequiredSecret
	// OnSecretChange: see Profile; "" means OnSecretChangeKeep.
	OnSecretChange string
}

// ProfilePatch changes some fields of a profile; a nil field is left as it
// is. A non-nil empty list or map clears the field.
type ProfilePatch struct {
	Name          *string
	Image         *string
	Command       *[]string
	SetupCommands *[]string
	Env           *map[string]string
	Sandbox       *Sandbox // replaces the whole request; the zero Sandbox asks for the defaults
	// RequiredSecrets replaces the whole list; an empty list clears it.
	RequiredSecrets *[]RequiredSecret
	// OnSecretChange: see Profile; "" means OnSecretChangeKeep.
	OnSecretChange *string
}

func (p *Profile) validate() error {
	switch {
	case strings.TrimSpace(p.Name) == "":
		return Invalid("name", "is required")
	case utf8.RuneCountInString(p.Name) > MaxProfileNameLen:
		return Invalid("name", "must be at most %d characters", MaxProfileNameLen)
	case !printable(p.Name):
		return Invalid("name", "must be valid UTF-8 without control characters")
	}
	switch {
	case p.Image == "":
		return Invalid("image", "is required")
	case len(p.Image) > MaxImageLen:
		return Invalid("image", "must be at most %d characters", MaxImageLen)
	case !printable(p.Image) || strings.ContainsAny(p.Image, " \t"):
		return Invalid("image", "must be an image reference without spaces or control characters")
	}
	if err := validateArgs("command", p.Command); err != nil {
		return err
	}
	if err := validateArgs("setup_commands", p.SetupCommands); err != nil {
		return err
	}
	if err := validateRequired(p.RequiredSecrets); err != nil {
		return err
	}
	if err := validateOnSecretChange(p.OnSecretChange); err != nil {
		return err
	}
	if len(p.Env) > MaxProfileEnv {
		return Invalid("env", "must hold at most %d names", MaxProfileEnv)
	}
	for name, value := range p.Env {
		if err := ValidateName("env", name); err != nil {
			return Invalid("env", "name %q must match %s", truncate(name, 64), NamePattern)
		}
		if len(value) > MaxValueLen || strings.IndexByte(value, 0) >= 0 || !utf8.ValidString(value) {
			return Invalid("env", "value of %s must be valid UTF-8 of at most %d bytes without NUL bytes", name, MaxValueLen)
		}
	}
	return nil
}

func validateArgs(field string, args []string) error {
	if len(args) > MaxArgs {
		return Invalid(field, "must hold at most %d entries", MaxArgs)
	}
	n := 0
	for i, a := range args {
		n += len(a)
		if !utf8.ValidString(a) || strings.IndexByte(a, 0) >= 0 {
			return Invalid(field, "entry %d must be valid UTF-8 without NUL bytes", i)
		}
	}
	if n > maxArgsBytes {
		return Invalid(field, "must be at most %d bytes in all", maxArgsBytes)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// CreateProfile validates in and stores a new profile. Returns EINVALID if
// a rule is broken, ECONFLICT if the user has a profile of that name.
func (s *Service) CreateProfile(ctx context.Context, userID string, in ProfileInput) (*Profile, error) {
	now := s.timestamp()
	p := &Profile{
		ID: NewID(PrefixProfile), UserID: userID, Name: strings.TrimSpace(in.Name), Image: in.Image,
		Command: nonNil(in.Command), SetupCommands: nonNil(in.SetupCommands), Env: in.Env,
		Sandbox: in.Sandbox, RequiredSecrets: normalizeRequired(in.RequiredSecrets),
		OnSecretChange: onSecretChangeOr(in.OnSecretChange), CreatedAt: now, UpdatedAt: now,
	}
	p.Sandbox.normalize()
	if p.Env == nil {
		p.Env = map[string]string{}
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if _, err := s.sandbox.Settings(p.Sandbox); err != nil {
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
		cur, err := lockProfile(ctx, tx, id)
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
		if pt.Sandbox != nil {
			p.Sandbox = *pt.Sandbox
			p.Sandbox.normalize()
		}
		if pt.RequiredSecrets != nil {
			p.RequiredSecrets = normalizeRequired(*pt.RequiredSecrets)
		}
		if pt.OnSecretChange != nil {
			p.OnSecretChange = onSecretChangeOr(*pt.OnSecretChange)
		}
		if err := p.validate(); err != nil {
			return err
		}
		if _, err := s.sandbox.Settings(p.Sandbox); err != nil {
			return err
		}
		p.UpdatedAt = s.timestamp()
		if err := tx.UpdateProfile(ctx, &p); err != nil {
			return err
		}
		out = &p
		return s.audit(ctx, tx, userID, ActionProfileUpdate, TargetProfile, id,
			map[string]any{"name": p.Name, "image": p.Image, "changed": sandboxChange(cur, &p, profileChanges(cur, &p))})
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
		cur, err := lockProfile(ctx, tx, id)
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
	p, err := view(ctx, s.store, userID, func(tx Tx) (*Profile, error) { return tx.Profile(ctx, id) })
	if err != nil {
		return nil, fmt.Errorf("read profile %s: %w", id, err)
	}
	return p, nil
}

// Profiles lists the user's profiles by name. Returns EINVALID for a bad
// limit, query or cursor.
func (s *Service) Profiles(ctx context.Context, userID string, o ListOptions) (Page[*Profile], error) {
	p, err := listPage(ctx, s.store, userID, o, Tx.Profiles, func(x *Profile) Cursor { return Cursor{x.Name, x.ID} })
	if err != nil {
		return p, fmt.Errorf("list profiles: %w", err)
	}
	return p, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// lockProfile takes a profile's lock and then reads it, for a write that
// writes back what it read.
func lockProfile(ctx context.Context, tx Tx, id string) (*Profile, error) {
	if err := tx.Lock(ctx, id); err != nil {
		return nil, err
	}
	return tx.Profile(ctx, id)
}
