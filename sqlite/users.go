package sqlite

import (
	"context"
	"database/sql"

	"github.com/envvault/envvault/vault"
)

// CreateUser inserts a user and its first token, and appends events to
// the audit trail, in one transaction. Returns ECONFLICT if either id is
// taken.
func (db *DB) CreateUser(ctx context.Context, u *vault.User, t *vault.Token, events ...*vault.AuditEvent) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error {
		if _, err := stx.ExecContext(ctx, `INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)`,
			u.ID, u.Name, micros(u.CreatedAt)); err != nil {
			return convert(err, "insert user", conflictAs("id", "a user of this id already exists"))
		}
		if err := insertToken(ctx, stx, t); err != nil {
			return err
		}
		for _, ev := range events {
			if err := appendAudit(ctx, stx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateToken adds a token for an existing user, and appends events to the
// audit trail, in one transaction. Returns ENOTFOUND if the user does not
// exist, ECONFLICT if the token id is taken.
func (db *DB) CreateToken(ctx context.Context, t *vault.Token, events ...*vault.AuditEvent) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error {
		if err := insertToken(ctx, stx, t); err != nil {
			return err
		}
		for _, ev := range events {
			if err := appendAudit(ctx, stx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
