package vault

import (
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
	// MinMaskedLen is the length below which a value cannot be masked in
	// logs without blanking out ordinary words; saving a shorter one warns.
	MinMaskedLen = 4
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
}

// SecretInput is what a user gives to create a secret.
type SecretInput struct {
	Name        string
	Value       string
	Scope       Scope // "" means ScopeAll
	ProfileIDs  []string
	Description string
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
