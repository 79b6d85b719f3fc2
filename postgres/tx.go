package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/vault"
)

// tx is a vault.Tx: every statement is scoped to userID, so another user's
// id matches no row and answers ENOTFOUND like an id that never existed.
type tx struct {
	tx     pgx.Tx
	userID string
	db     *DB // for the audit reads, which link first (AuditEvents)
}

var _ vault.Tx = (*tx)(nil)

// deferrer is a transaction that sends statements in rounds: Update's
// pipe and a group's member.
type deferrer interface {
	Defer(sql string, args []any, done func(pgconn.CommandTag, error) error)
	stmts(ctx context.Context, list ...stmt) error
}

// later runs sql, a statement whose only answer is its command tag, as
// late as the transaction allows: in Update's pipeline it goes with the
// next statement sent (pipe.Defer); elsewhere it runs now. done turns the
// answer into the statement's error (see pipe.Defer); its error is
// returned here, or by the call that sends it.
func (t *tx) later(ctx context.Context, sql string, args []any, done func(pgconn.CommandTag, error) error) error {
	if p, ok := t.tx.(deferrer); ok {
		p.Defer(sql, args, done)
		return nil
	}
	tag, err := t.tx.Exec(ctx, sql, args...)
	if done != nil {
		err = done(tag, err)
	}
	return err
}

// now runs list in one round trip (in Update's pipeline, after what is
// queued), or one after the other elsewhere, and returns the first error.
func (t *tx) now(ctx context.Context, list ...stmt) error {
	if p, ok := t.tx.(deferrer); ok {
		return p.stmts(ctx, list...)
	}
	for _, s := range list {
		if err := t.later(ctx, s.sql, s.args, s.done); err != nil {
			return err
		}
	}
	return nil
}

// checkOwner returns an internal error if a row of user owner is written
// in the transaction of another.
func (t *tx) checkOwner(kind, id, owner string) error {
	return sqlstore.CheckOwner(kind, id, owner, t.userID)
}

// listWhere returns the WHERE clause and arguments of a list page: the
// user's rows whose names contain f.Query, case-insensitively, after
// f.After in (name, id) order. Both sides of the substring test are in the
// database's default collation, so that upper() folds them alike; the
// name column itself is "C".
func (t *tx) listWhere(alias string, f vault.ListFilter) (string, []any) {
	w := sqlstore.ListWhere(sqlstore.Dollar, `strpos(upper(%s.name COLLATE "default"), upper(?)) > 0`, alias, t.userID, f)
	return w.String(), w.Args
}
