package vault

import (
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
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// ProfileInput is what a user gives to create a profile.
type ProfileInput struct {
	Name          string
	Image         string
	Command       []string
	SetupCommands []string
	Env           map[string]string
}

// ProfilePatch changes some fields of a profile; a nil field is left as it
// is. A non-nil empty list or map clears the field.
type ProfilePatch struct {
	Name          *string
	Image         *string
	Command       *[]string
	SetupCommands *[]string
	Env           *map[string]string
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
