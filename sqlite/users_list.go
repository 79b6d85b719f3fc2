package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/envvault/envvault/vault"
)

// Users returns every user, oldest first (vault.UserDirectory).
func (db *DB) Users(ctx context.Context) ([]*vault.User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, name, created_at FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []*vault.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// UserNamed returns the oldest user of that name, or ENOTFOUND
// (vault.UserDirectory).
func (db *DB) UserNamed(ctx context.Context, name string) (*vault.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT id, name, created_at FROM users WHERE name = ? ORDER BY created_at, id LIMIT 1`, name))
	if err != nil {
		return nil, convert(err, "read user by name", noRowsAs(notFound("user")))
	}
	return u, nil
}

func scanUser(row interface{ Scan(...any) error }) (*vault.User, error) {
	var u vault.User
	var created int64
	if err := row.Scan(&u.ID, &u.Name, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err // converted by the caller
		}
		return nil, fmt.Errorf("read user: %w", err)
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}
