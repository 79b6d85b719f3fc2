package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// Users returns every user, oldest first (vault.UserDirectory). It reads
// in system mode (policy users_system_read, migration 00013).
func (db *DB) Users(ctx context.Context) ([]*vault.User, error) {
	var users []*vault.User
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, name, created_at FROM users ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		users, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vault.User, error) {
			var u vault.User
			err := row.Scan(&u.ID, &u.Name, &u.CreatedAt)
			u.CreatedAt = u.CreatedAt.UTC()
			return &u, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// UserNamed returns the oldest user of that name, or ENOTFOUND
// (vault.UserDirectory). It reads in system mode.
func (db *DB) UserNamed(ctx context.Context, name string) (*vault.User, error) {
	var u vault.User
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT id, name, created_at FROM users WHERE name = $1 ORDER BY created_at, id LIMIT 1`, name).Scan(&u.ID, &u.Name, &u.CreatedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vault.Errorf(vault.ENOTFOUND, "user not found")
	}
	if err != nil {
		return nil, fmt.Errorf("read user by name: %w", err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}
