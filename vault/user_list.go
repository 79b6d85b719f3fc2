package vault

import (
	"context"
	"fmt"
	"strings"
)

// UserDirectory is what a Store gives the operator's commands about users
// (`envvault user list`, --user NAME): every user, across users. Both
// stores implement it; a Store without it makes Users and UserByRef answer
// EINTERNAL.
type UserDirectory interface {
	// Users returns every user, oldest first.
	Users(ctx context.Context) ([]*User, error)
	// UserNamed returns the oldest user of that name, or ENOTFOUND.
	UserNamed(ctx context.Context, name string) (*User, error)
}

func (s *Service) directory() (UserDirectory, error) {
	d, ok := s.store.(UserDirectory)
	if !ok {
		return nil, Errorf(EINTERNAL, "this store cannot list users")
	}
	return d, nil
}

// Users returns every user, oldest first. For the operator: it reads
// across users.
func (s *Service) Users(ctx context.Context) ([]*User, error) {
	d, err := s.directory()
	if err != nil {
		return nil, err
	}
	users, err := d.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// UserByRef returns the user ref names: its id (usr_…) or its name. It
// returns ENOTFOUND naming ref when there is none. For the operator.
func (s *Service) UserByRef(ctx context.Context, ref string) (*User, error) {
	d, err := s.directory()
	if err != nil {
		return nil, err
	}
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, PrefixUser) {
		users, err := d.Users(ctx)
		if err != nil {
			return nil, fmt.Errorf("find user %s: %w", ref, err)
		}
		for _, u := range users {
			if u.ID == ref {
				return u, nil
			}
		}
	}
	u, err := d.UserNamed(ctx, ref)
	if ErrorCode(err) == ENOTFOUND {
		return nil, &Error{Code: ENOTFOUND, Message: fmt.Sprintf("user not found: no user has the name or id %q (envvault user list shows them)", ref)}
	}
	if err != nil {
		return nil, fmt.Errorf("find user %s: %w", ref, err)
	}
	return u, nil
}

// CreateUniqueUser is CreateUser refusing a name another user has, with
// ECONFLICT on "name" (`envvault user create`). The check reads before
// the insert and the database does not back it (names are not unique in
// the schema: tests and stores create same-named users), so two creates of
// one name at the same instant can both succeed.
func (s *Service) CreateUniqueUser(ctx context.Context, name string) (*User, string, error) {
	d, err := s.directory()
	if err != nil {
		return nil, "", err
	}
	switch _, err := d.UserNamed(ctx, strings.TrimSpace(name)); {
	case err == nil:
		return nil, "", &Error{Code: ECONFLICT, Field: "name", Message: fmt.Sprintf("name: a user named %q already exists (envvault user list shows them)", strings.TrimSpace(name))}
	case ErrorCode(err) != ENOTFOUND:
		return nil, "", fmt.Errorf("check user name: %w", err)
	}
	return s.CreateUser(ctx, name)
}
