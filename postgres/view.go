package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/vault"
)

// errSecondStatement is the error of a second statement in ViewStatement:
// a caller that needs two reads over one snapshot calls View.
var errSecondStatement = errors.New("postgres: a one-statement view issued a second statement")

// setReadOnlyUser opens a one-statement view: the user's row-level
// security setting, and read-only, for the implicit transaction of the
// pipeline.
const setReadOnlyUser = `SELECT set_config($1, $2, true), set_config('transaction_read_only', 'on', true)`

// ViewStatement runs fn, a read of exactly one statement (such as
// Tx.Secret or one page of Tx.Secrets), in one round trip: the row-level
// security setting and the statement go in one pipeline, which PostgreSQL
// runs as one implicit read-only transaction, where View takes four round
// trips (BEGIN, the setting, the statement, COMMIT). A second statement
// fails with an internal error; a write fails as in View. It returns fn's
// error unchanged, except that losing the database is EUNAVAILABLE.
func (db *DB) ViewStatement(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return unavailable(fn(&tx{tx: &oneStatement{db: db, userID: userID}, userID: userID, db: db}))
}

var _ vault.StatementViewer = (*DB)(nil)

// oneStatement is the pgx.Tx of ViewStatement. It has only what the
// store's reads call, Query, QueryRow and Exec; the embedded nil pgx.Tx
// makes any other method a panic, a bug of this package.
type oneStatement struct {
	pgx.Tx
	db     *DB
	userID string
	used   bool
}

// Query sends the setting and sql in one pipeline. The rows hold the
// pipeline's connection until they are closed or read to the end.
func (o *oneStatement) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if o.used {
		return nil, errSecondStatement
	}
	o.used = true
	b := &pgx.Batch{}
	b.Queue(setReadOnlyUser, settingUser, o.userID)
	b.Queue(sql, args...)
	br := o.db.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("set %s: %w", settingUser, err)
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &pipelineRows{Rows: rows, br: br}, nil
}

// QueryRow is Query for at most one row; pgx.ErrNoRows if none.
func (o *oneStatement) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := o.Query(ctx, sql, args...)
	return &pipelineRow{rows: rows, err: err}
}

// Exec is Query whose rows are dropped.
func (o *oneStatement) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	rows, err := o.Query(ctx, sql, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	rows.Close()
	return rows.CommandTag(), rows.Err()
}

// pipelineRows are the rows of the pipeline's statement; once they end,
// or are closed, the pipeline is closed too (its implicit transaction
// ends, its connection goes back to the pool), and Err reports a failure
// of either.
type pipelineRows struct {
	pgx.Rows
	br   pgx.BatchResults
	done bool
	err  error
}

func (r *pipelineRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *pipelineRows) Close() {
	if !r.done {
		r.done = true
		r.Rows.Close()
		r.err = r.br.Close()
	}
}

func (r *pipelineRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// pipelineRow is pgx.Row over pipelineRows.
type pipelineRow struct {
	rows pgx.Rows
	err  error
}

func (r *pipelineRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
