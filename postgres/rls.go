package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Row-level security (migrations/postgres/00005_rls.sql) lets a statement
// see a user's rows only in a transaction that has said whose it is, by a
// transaction-local setting: envvault.user_id for the store methods scoped
// to a user, envvault.system for the few that are cross-user by nature.
// Every statement the store issues on a table with policies therefore runs
// in userTx or systemTx; one issued outside them sees nothing. Being
// transaction-local, a setting ends at commit or rollback and never follows
// a pooled connection into its next transaction.
const (
	settingUser   = "envvault.user_id"
	settingSystem = "envvault.system"
)

// querier is what a statement runs on: a pgx.Tx here.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	readOnly  = pgx.TxOptions{AccessMode: pgx.ReadOnly}
	readWrite = pgx.TxOptions{}
)

// userTx runs fn in a transaction in which row-level security lets
// through userID's rows only, and commits if fn returns nil. It returns
// fn's error unchanged, except that losing the database is EUNAVAILABLE.
func (db *DB) userTx(ctx context.Context, opts pgx.TxOptions, userID string, fn func(pgx.Tx) error) error {
	return db.scopedTx(ctx, opts, settingUser, userID, fn)
}

// systemTx runs fn in a transaction in system mode, in which row-level
// security lets through the rows of every user for the commands the
// cross-user methods need (see the migration), and nothing else. Only
// those methods call it: a token read by id, the data-key counts, the task
// queue and its logs.
func (db *DB) systemTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	return db.scopedTx(ctx, opts, settingSystem, "on", fn)
}

// scopedTx is userTx and systemTx. An error that says the database cannot
// be reached becomes EUNAVAILABLE (unavailable.go), whichever step met it.
func (db *DB) scopedTx(ctx context.Context, opts pgx.TxOptions, setting, value string, fn func(pgx.Tx) error) error {
	return unavailable(db.runScopedTx(ctx, opts, setting, value, fn))
}

func (db *DB) runScopedTx(ctx context.Context, opts pgx.TxOptions, setting, value string, fn func(pgx.Tx) error) error {
	ptx, err := db.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// After Commit this is a no-op; on an error or a panic in fn it undoes
	// everything.
	defer func() { _ = ptx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := ptx.Exec(ctx, `SELECT set_config($1, $2, true)`, setting, value); err != nil {
		return fmt.Errorf("begin transaction: set %s: %w", setting, err)
	}
	if err := fn(ptx); err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", convert(err))
	}
	return nil
}

// userBatch sends the statements queue adds to b after setting the user,
// in one pipeline: one round trip, one implicit transaction (until the
// pipeline's one Sync), in which the setting holds. It is for the methods
// of one statement, which would otherwise pay a round trip each for
// BEGIN, the setting and COMMIT. A statement that fails rolls back the
// ones before it and skips the ones after it.
func (db *DB) userBatch(ctx context.Context, userID string, queue func(b *pgx.Batch)) error {
	return db.scopedBatch(ctx, settingUser, userID, queue)
}

// systemBatch is userBatch in system mode.
func (db *DB) systemBatch(ctx context.Context, queue func(b *pgx.Batch)) error {
	return db.scopedBatch(ctx, settingSystem, "on", queue)
}

func (db *DB) scopedBatch(ctx context.Context, setting, value string, queue func(b *pgx.Batch)) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config($1, $2, true)`, setting, value).Exec(func(pgconn.CommandTag) error { return nil })
	queue(b)
	return unavailable(db.pool.SendBatch(ctx, b).Close())
}

// BypassesRLS reports whether the role the store connects as passes
// through row-level security: a superuser or a BYPASSRLS role. The
// service should connect as neither (see the README).
func (db *DB) BypassesRLS(ctx context.Context) (bool, error) {
	var bypass bool
	err := db.pool.QueryRow(ctx, `SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&bypass)
	if err != nil {
		return false, fmt.Errorf("read the attributes of the current role: %w", err)
	}
	return bypass, nil
}
