package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A user's transaction (Update, View) is a pipeline: its statements go to
// the server in as few round trips as their answers allow. BEGIN, the
// row-level security setting and (in Update) the user's existence check go
// with the first statement sent; a statement whose only answer is a
// command tag and whose failure no caller acts on at once (Defer: the
// locks, a kept version, a pruned one, a row update that cannot break a
// uniqueness rule, the audit event, whose failure must only keep the write
// from committing) waits for the next statement sent, or for COMMIT. A
// write whose error the caller reads (ECONFLICT of a rename or a grant) is
// sent at its call, with what is queued before it, all its statements in
// one round trip (stmts). A new value thus takes two round trips
// (TestWriteRoundTrips) where one per statement took thirteen.
//
// The server runs the statements in the order they were queued, so a
// read sees every write queued before it, and a lock queued before a
// read is held when the read runs. A deferred statement's failure is
// returned by the call that sends it, and the transaction never commits
// after it.

// expectRow wraps write, an INSERT, UPDATE or DELETE without RETURNING,
// so that the server fails it with no_data_found, and so aborts the
// transaction, if it touches no row (migration 00022). A write deferred to
// go with COMMIT needs it: its row count, read by the client once the
// server has run the COMMIT after it, would come too late to stop the
// commit. found turns the failure into ENOTFOUND.
func expectRow(write string) string {
	return `WITH w AS (` + write + ` RETURNING 1) SELECT envvault_expect_row(EXISTS (SELECT FROM w))`
}

// errPipeFailed is returned by a call after a statement of the pipeline
// failed: the transaction can only roll back.
var errPipeFailed = errors.New("postgres: a statement of this transaction failed before")

// pipe is the pgx.Tx of Update and View. It has what the store's methods
// call, Exec, Query and QueryRow, and Defer; the embedded nil pgx.Tx makes
// any other method a panic, a bug of this package.
type pipe struct {
	pgx.Tx
	conn    *pgxpool.Conn
	queued  *pgx.Batch
	dones   []func(pgconn.CommandTag, error) error // one per queued statement; nil accepts any answer but an error
	sent    bool                                   // BEGIN has gone to the server
	failed  bool
	settled bool // committed, or rolled back
}

// pipeTx runs fn in a transaction opened by begin (a BEGIN statement with
// its options) with setting = value, on one pooled connection, and
// commits if fn returns nil. It returns fn's error unchanged, except that
// losing the database is EUNAVAILABLE.
func (db *DB) pipeTx(ctx context.Context, begin, setting, value string, fn func(*pipe) error) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("begin transaction: %w", err))
	}
	p := &pipe{conn: conn, queued: &pgx.Batch{}}
	defer p.release(ctx)
	p.Defer(begin, nil, nil)
	p.Defer(`SELECT set_config($1, $2, true)`, []any{setting, value}, nil)
	if err := fn(p); err != nil {
		return unavailable(err)
	}
	return unavailable(p.commit(ctx))
}

// Defer queues sql, whose only answer is its command tag, to go with the
// next statement that is sent. done, if not nil, turns the answer (the
// tag, or the statement's error) into the statement's error, converted
// and with its context; the first such error is returned by the call that
// sent it, or by the commit.
func (p *pipe) Defer(sql string, args []any, done func(pgconn.CommandTag, error) error) {
	p.queued.Queue(sql, args...)
	p.dones = append(p.dones, done)
}

// stmt is a statement whose only answer is its command tag, and what
// turns that answer into its error (see Defer).
type stmt struct {
	sql  string
	args []any
	done func(pgconn.CommandTag, error) error
}

// stmts sends the queued statements and then list, in one round trip, and
// returns the first error of any.
func (p *pipe) stmts(ctx context.Context, list ...stmt) error {
	for _, s := range list {
		p.Defer(s.sql, s.args, s.done)
	}
	br, err := p.send(ctx, "", nil)
	if err != nil {
		return err
	}
	err = br.Close()
	p.failed = err != nil
	return err
}

// send sends the queued statements and then sql (none if empty), in one
// round trip, checks the queued statements' answers, and returns the
// results positioned at sql's.
func (p *pipe) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	if p.failed {
		return nil, errPipeFailed
	}
	b, dones := p.queued, p.dones
	p.queued, p.dones = &pgx.Batch{}, nil
	if sql != "" {
		b.Queue(sql, args...)
	}
	p.sent = true
	br := p.conn.SendBatch(ctx, b)
	for _, done := range dones {
		tag, err := br.Exec()
		// A statement the server refused aborted the transaction; one whose
		// answer done judges wrong (no row updated) did not.
		p.failed = err != nil
		if done != nil {
			err = done(tag, err)
		}
		if err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	return br, nil
}

// Query sends the queued statements and sql. The rows hold the
// connection's results until they are closed or read to the end.
func (p *pipe) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br, err := p.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		p.failed = true
		_ = br.Close()
		return nil, err
	}
	return &pipelineRows{Rows: rows, br: br}, nil
}

// QueryRow is Query for at most one row; pgx.ErrNoRows if none.
func (p *pipe) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	return &pipelineRow{rows: rows, err: err}
}

// Exec sends the queued statements and sql now, for a caller that needs
// its answer before it goes on.
func (p *pipe) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	br, err := p.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	p.failed = err != nil
	return tag, err
}

// commit sends the queued statements and COMMIT in one round trip.
func (p *pipe) commit(ctx context.Context) error {
	tag, err := p.Exec(ctx, "COMMIT")
	if err != nil {
		return fmt.Errorf("commit: %w", convert(err))
	}
	// COMMIT of a transaction that failed answers ROLLBACK, not an error.
	if tag.String() != "COMMIT" {
		return fmt.Errorf("commit: the server answered %q", tag.String())
	}
	p.settled = true
	return nil
}

// release rolls back a transaction that did not commit and gives the
// connection back to the pool, which closes it if it is still in a
// transaction (the rollback failed).
func (p *pipe) release(ctx context.Context) {
	if p.sent && !p.settled {
		_, _ = p.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
	p.conn.Release()
}
