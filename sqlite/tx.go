package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/vault"
)

// tx is a vault.Tx: every statement names the transaction's user, so
// another user's rows are invisible to it. It is not safe for concurrent
// use, as *sql.Tx is not.
type tx struct {
	tx     *sql.Tx
	userID string
}

var _ vault.Tx = (*tx)(nil)

// listWhere returns the WHERE clause and arguments of a list page: the
// user's rows whose names contain f.Query, case-insensitively for ASCII
// letters, after f.After in (name, id) order. instr, not LIKE: no
// character of the query is a wildcard; upper() folds ASCII letters only.
func (t *tx) listWhere(alias string, f vault.ListFilter) (string, []any) {
	w := sqlstore.ListWhere(sqlstore.Question, "instr(upper(%s.name), upper(?)) > 0", alias, t.userID, f)
	return w.String(), w.Args
}

// atomically runs fn inside a savepoint, so a method of several statements
// either writes all of them or, when one fails, none: the transaction stays
// usable and unchanged.
func (t *tx) atomically(ctx context.Context, fn func() error) error {
	if _, err := t.tx.ExecContext(ctx, `SAVEPOINT vault_tx_method`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(); err != nil {
		// Undo even if ctx has ended: the transaction may still commit.
		undo := context.WithoutCancel(ctx)
		if _, rerr := t.tx.ExecContext(undo, `ROLLBACK TO vault_tx_method`); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rerr))
		}
		if _, rerr := t.tx.ExecContext(undo, `RELEASE vault_tx_method`); rerr != nil {
			return errors.Join(err, fmt.Errorf("release savepoint: %w", rerr))
		}
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `RELEASE vault_tx_method`); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// insertError converts the error of an insert into table (secrets or
// profiles) of a row with the given id. A taken id also breaks every unique
// index that holds the id, and SQLite may report any one of them, so a
// unique violation is told apart by asking whether the id exists.
func (t *tx) insertError(ctx context.Context, err error, table, kind, id, nameMsg string) error {
	op := "insert into " + table + " " + id
	if !isUnique(err) && !isPrimaryKey(err) {
		return convert(err, op, foreignKeyAs(notFound("user")))
	}
	var n int
	if qerr := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE id = ?`, id).Scan(&n); qerr != nil {
		return errors.Join(convert(err, op), fmt.Errorf("look up id: %w", qerr))
	}
	if n > 0 {
		return convert(err, op, conflictAs("id", "a "+kind+" of this id already exists"))
	}
	return convert(err, op, conflictAs("name", nameMsg))
}

// checkOwner returns an internal error if a row of user owner is written
// in the transaction of another.
func (t *tx) checkOwner(kind, id, owner string) error {
	return sqlstore.CheckOwner(kind, id, owner, t.userID)
}

// oneRow returns ENOTFOUND if the statement touched no row.
func oneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}
