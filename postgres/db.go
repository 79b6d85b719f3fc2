// Package postgres is the vault.Store on PostgreSQL, through a pgx/v5
// connection pool.
//
// Writes take only the locks their rule needs (vault.Tx.LockUser, the
// user's row lock, for the writes the secret quota counts; vault.Tx.Lock,
// an advisory lock, for one object's read-modify-write), so writes of
// different users, and of one user to different objects, never wait for
// each other; the unique indexes of the schema back the name rules, and
// their violations come back as vault.ECONFLICT. Audit events are linked
// into the chain after the commit (audit_link.go). A new value of a secret
// may share its transaction and its commit with other callers' (group.go).
package postgres

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/envvault/envvault/migrations"
	"github.com/envvault/envvault/vault"
)

// DB is a vault.Store on a PostgreSQL database.
type DB struct {
	pool   *pgxpool.Pool
	linker linker    // the link passes of this process (audit_link.go)
	feed   tokenFeed // revoked tokens, told to the token caches (token_feed.go)
	group  combiner  // the groups of value writes (group.go)
}

var _ vault.Store = (*DB)(nil)

// Open connects to the database at url (a postgres:// URL or keyword/value
// string, as pgx reads it) and checks that it answers. Its errors never
// contain the password.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password in the connection string it quotes.
		return nil, fmt.Errorf("parse PostgreSQL connection string: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns()
	}
	cfg.ConnConfig.BuildContextWatcherHandler = cancelOnServer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	db := &DB{pool: pool}
	db.group.db = db
	return db, nil
}

// cancelDeadline is how long a statement whose caller's context ended may
// take to stop on the server before the connection is closed.
const cancelDeadline = time.Second

// cancelOnServer makes a caller's context that ends mid-statement cancel
// the statement on the server (a cancel request), and closes the
// connection only if the server has not answered within cancelDeadline.
// pgx's default only closes the connection: a server waiting for a row
// lock went on once the row was free and ran the COMMIT already sent
// behind the waiting statement, storing a write whose caller had an error
// (TestLoneWriteCallerGivesUp). Cancelled, the statement fails and the
// COMMIT behind it rolls back.
func cancelOnServer(c *pgconn.PgConn) ctxwatch.Handler {
	return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
}

// DefaultMaxConns is the size of the connection pool unless the URL
// names one (pool_max_conns=N): four per CPU, at least 16. pgx's own
// default, the number of CPUs (at least 4), let only four writes wait for
// their commit at once on a 2-CPU machine, and so share a flush of the
// write-ahead log: writes from 16 clients were no faster than from 4.
func DefaultMaxConns() int32 { return int32(max(16, 4*runtime.NumCPU())) }

// Migrate applies the migrations the database has not seen yet and returns
// how many it applied. It is safe to run twice, and from several processes
// at once: an advisory lock makes them take turns.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	// goose needs a *sql.DB; it gets its own, from the same settings, only
	// for as long as it migrates.
	sqlDB := stdlib.OpenDB(*db.pool.Config().ConnConfig)
	defer sqlDB.Close()
	n, err := migrations.Up(ctx, sqlDB, migrations.Postgres)
	if err != nil {
		return n, fmt.Errorf("migrate PostgreSQL: %w", err)
	}
	return n, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return nil
}

// Close releases the pool's connections.
func (db *DB) Close() error {
	db.stopFeed()
	db.group.close()
	db.linker.wait()
	db.pool.Close()
	return nil
}

// lockUser takes the user's row lock that serializes the writes the
// secret quota counts. FOR NO KEY UPDATE, not FOR UPDATE: it conflicts
// with itself, which is all the serialization needs, but not with the KEY
// SHARE locks that foreign-key checks take, so creating a token, a profile
// or a secret's new version for the user does not wait for it. It fails
// on the server if the user is not there (expectRow), since Update's
// pipeline may send it with COMMIT.
const lockUser = `SELECT envvault_expect_row(EXISTS (SELECT FROM users WHERE id = $1 FOR NO KEY UPDATE))`

// lockObject takes the transaction-scoped advisory lock of one object of
// a user, keyed by a 64-bit hash of the user's id and the object's id:
// two keys that collide only make two writes take turns.
const lockObject = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`

// tryLockObject takes lockObject's lock if no other transaction holds it:
// one row if it did, none if not.
const tryLockObject = `SELECT 1 WHERE pg_try_advisory_xact_lock(hashtextextended($1, 0))`

// userMustExist checks that the user exists, taking no lock (a write that
// needs the user to stay takes its lock, LockUser, or inserts a row whose
// foreign key holds it). Update's pipeline sends it with fn's first
// statement, and so maybe with COMMIT: it fails on the server if the user
// does not exist (expectRow), so that nothing fn queued commits.
const userMustExist = `SELECT envvault_expect_row(EXISTS (SELECT FROM users WHERE id = $1))`

// Update runs fn in a read-committed transaction of the user, under
// row-level security, taking no lock of its own, in a pipeline
// (pipeline.go). After the commit it starts a link pass for the audit
// events committed so far and returns without waiting for it: a reader of
// the trail waits for it instead (LinkAudit). Returns ENOTFOUND if the
// user does not exist, or fn's error unchanged.
func (db *DB) Update(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	err := db.pipeTx(ctx, `BEGIN ISOLATION LEVEL READ COMMITTED`, settingUser, userID, func(p *pipe) error {
		// BEGIN, the setting and this check go with fn's first statement:
		// a missing user's ENOTFOUND is the first answer read, before that
		// statement's own.
		p.Defer(userMustExist, []any{userID}, userFound)
		return fn(&tx{tx: p, userID: userID, db: db})
	})
	if err != nil {
		return err
	}
	db.linkAfter()
	return nil
}

// userFound is the answer of userMustExist and lockUser: ENOTFOUND if the
// user does not exist.
func userFound(tag pgconn.CommandTag, err error) error {
	if isNoRow(err) {
		return vault.Errorf(vault.ENOTFOUND, "user not found")
	}
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "user not found")
	}
	return nil
}

// View runs fn in a read-only transaction over one snapshot (repeatable
// read, which never fails a read-only transaction), in a pipeline: BEGIN
// and the setting go with the first read. It returns fn's error unchanged.
func (db *DB) View(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.pipeTx(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`, settingUser, userID, func(p *pipe) error {
		return fn(&tx{tx: p, userID: userID, db: db})
	})
}

// LockUser takes the user's row lock until the transaction ends. Returns
// ENOTFOUND if the user does not exist (from this call or, in Update's
// pipeline, from the next that reaches the server).
func (t *tx) LockUser(ctx context.Context) error {
	return t.later(ctx, lockUser, []any{t.userID}, userFound)
}

// Lock takes the advisory lock of the user's object id until the
// transaction ends. In a group (group.go) it does not wait for a lock
// another transaction holds, as every member would wait with it: the
// member leaves the group (errLockBusy) and runs again alone, and waits
// there.
func (t *tx) Lock(ctx context.Context, id string) error {
	if _, ok := t.tx.(*member); ok {
		return t.later(ctx, tryLockObject, []any{t.userID + "/" + id}, func(tag pgconn.CommandTag, err error) error {
			if err == nil && tag.RowsAffected() == 0 {
				err = errLockBusy
			}
			if err != nil {
				return fmt.Errorf("lock %s: %w", id, err)
			}
			return nil
		})
	}
	return t.later(ctx, lockObject, []any{t.userID + "/" + id}, func(_ pgconn.CommandTag, err error) error {
		if err != nil {
			return fmt.Errorf("lock %s: %w", id, err)
		}
		return nil
	})
}
