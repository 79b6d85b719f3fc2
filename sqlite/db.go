// Package sqlite is the embedded vault.Store: one SQLite file, through the
// pure-Go driver modernc.org/sqlite, so the binary stays static.
//
// A DB holds two connection pools on the file. Writes go through a pool of
// exactly one connection whose transactions begin with BEGIN IMMEDIATE: the
// write lock is taken before the first read, so a read-check-write inside
// Update cannot race another writer, of this process or another. Reads go
// through a pool of query-only connections; in WAL mode they never wait for
// the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/envvault/envvault/migrations"
	"github.com/envvault/envvault/vault"
)

// busyTimeout is how long a connection waits for a lock another connection
// holds before it gives up with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// DB is a vault.Store on one SQLite file.
type DB struct {
	path  string
	write *sql.DB // one connection; transactions BEGIN IMMEDIATE
	read  *sql.DB // query-only connections
}

var _ vault.Store = (*DB)(nil)

// Open opens the SQLite database file at path, creating it if it does not
// exist (its directory must). It sets foreign_keys=on, journal_mode=WAL,
// synchronous=FULL and a busy timeout on every connection. Call Migrate
// before use.
func Open(ctx context.Context, path string) (*DB, error) {
	// The driver reads everything after '?' as DSN parameters, and a path
	// starting with "file:" as a URI; neither could mean a plain file here.
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite database %q: need the path of a file, without '?' or '#'", path)
	}
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	// FULL: every commit syncs the WAL before it returns, so an
	// acknowledged write survives power loss (NORMAL syncs only at
	// checkpoints and may lose the last commits).
	common.Add("_pragma", "synchronous(FULL)")

	wq := cloneValues(common)
	// journal_mode is a property of the file; the writer sets it once, on
	// its first connection, before any reader connects.
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Set("_txlock", "immediate")
	write, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	var mode string
	if err := write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite database %s: read journal mode: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		write.Close()
		return nil, fmt.Errorf("open sqlite database %s: journal mode is %q, want wal", path, mode)
	}

	rq := cloneValues(common)
	rq.Set("_query_only", "1")
	read, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return &DB{path: path, write: write, read: read}, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Migrate applies the schema migrations the file has not seen yet and
// returns how many it applied. It is safe to call twice, and from two
// handles or processes at once: they take turns (lockMigrations); and
// where no lock can be had, a migration that loses the race to another
// process fails as a whole (each runs in its own transaction), and Migrate
// then tries again while the schema version keeps moving.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	unlock, err := lockMigrations(ctx, db.path)
	if err != nil {
		return 0, fmt.Errorf("migrate sqlite database %s: %w", db.path, err)
	}
	defer unlock()
	applied := 0
	for {
		before, err := db.schemaVersion(ctx)
		if err != nil {
			return applied, err
		}
		n, err := migrations.Up(ctx, db.write, migrations.SQLite)
		applied += n
		if err == nil {
			return applied, nil
		}
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			applied += len(partial.Applied)
		}
		after, verr := db.schemaVersion(ctx)
		if verr != nil || after <= before || ctx.Err() != nil {
			// Nobody made progress: the failure is the migration's own.
			return applied, fmt.Errorf("migrate sqlite database %s: %w", db.path, err)
		}
	}
}

// schemaVersion returns the newest migration applied, 0 before the first.
func (db *DB) schemaVersion(ctx context.Context) (int64, error) {
	var exists int
	err := db.write.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'goose_db_version'`).Scan(&exists)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if exists == 0 {
		return 0, nil
	}
	v, err := migrations.Version(ctx, db.write, migrations.SQLite)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Update runs fn in a write transaction scoped to userID and commits if fn
// returns nil. The transaction holds the database's write lock from its
// start, so writes of every user are serialized (SQLite has one writer):
// the locks of vault.Tx are taken already.
func (db *DB) Update(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.run(ctx, db.write, nil, userID, fn)
}

// LockUser takes the user's lock: the transaction holds the database's
// write lock already, which serializes every write, so there is nothing
// more to take.
func (t *tx) LockUser(context.Context) error { return nil }

// Lock takes an object's lock: the transaction holds the database's write
// lock already, so there is nothing more to take.
func (t *tx) Lock(context.Context, string) error { return nil }

// View runs fn in a read-only transaction scoped to userID: it sees one
// snapshot, and any write in it fails.
func (db *DB) View(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.run(ctx, db.read, &sql.TxOptions{ReadOnly: true}, userID, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, userID string, fn func(vault.Tx) error) error {
	return db.unavailable(pool, db.runTx(ctx, pool, opts, userID, fn))
}

func (db *DB) runTx(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, userID string, fn func(vault.Tx) error) error {
	stx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// Rolls back when fn fails or panics; after Commit it is a no-op.
	defer stx.Rollback()
	if err := fn(&tx{tx: stx, userID: userID}); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// Ping checks that the database file answers a read. It does not wait for
// the write connection, which a long write may hold.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
		return fmt.Errorf("ping sqlite database %s: %w", db.path, err)
	}
	return nil
}

// Close releases both connection pools.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

// writeTx runs fn in a transaction on the write connection, which begins
// with BEGIN IMMEDIATE: it holds the database's write lock from its first
// statement, so what fn reads stays true until it commits.
func (db *DB) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.unavailable(db.write, db.runWriteTx(ctx, fn))
}

func (db *DB) runWriteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer stx.Rollback()
	if err := fn(stx); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
