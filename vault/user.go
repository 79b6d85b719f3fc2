package vault

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// User owns secrets, profiles and tasks.
type User struct {
	ID        string
	Name      string
	CreatedAt time.Time
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
	t, token := newToken(u.ID, TokenSpec{Name: InitialTokenName, Scope: TokenFull}, now)
	events := []*AuditEvent{
		s.event(ctx, u.ID, ActionUserCreate, TargetUser, u.ID, map[string]any{"name": u.Name}),
		s.event(ctx, u.ID, ActionTokenCreate, TargetToken, t.ID, tokenDetails(t)),
	}
	if err := s.store.CreateUser(ctx, u, t, events...); err != nil {
		return nil, "", fmt.Errorf("create user: %w", err)
	}
	return u, token, nil
}

var errBadToken = Errorf(EUNAUTHORIZED, "missing or invalid API token")
