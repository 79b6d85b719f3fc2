package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/vault"
)

// CreateUser inserts a user and its first token, and appends events to
// the audit trail, in one transaction. Returns ECONFLICT if either id is
// taken.
func (db *DB) CreateUser(ctx context.Context, u *vault.User, t *vault.Token, events ...*vault.AuditEvent) error {
	err := db.userTx(ctx, readWrite, u.ID, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)`,
			u.ID, u.Name, u.CreatedAt); err != nil {
			return fmt.Errorf("insert user: %w", convert(err))
		}
		if err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		return appendAudits(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	db.linkAfter()
	return nil
}

// CreateToken adds a token for an existing user, and appends events to the
// audit trail, in one transaction. Returns ENOTFOUND if the user does not
// exist, ECONFLICT if the token id is taken.
func (db *DB) CreateToken(ctx context.Context, t *vault.Token, events ...*vault.AuditEvent) error {
	err := db.userTx(ctx, readWrite, t.UserID, func(tx pgx.Tx) error {
		if err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		return appendAudits(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	db.linkAfter()
	return nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}
