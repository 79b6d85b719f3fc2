// Package postgres is the vault.Store on PostgreSQL, through a pgx/v5
// connection pool.
//
// Writes take only the locks their rule needs (vault.Tx.LockUser, the
// user's row lock, for the writes the secret quota counts; vault.Tx.Lock,
// an advisory lock, for one object's read-modify-write), so writes of
// different users, and of one user to different objects, never wait for
// each other; the unique indexes of the schema back the name rules, and
// their violations come back as vault.ECONFLICT. Audit events are linked
// into the chain after the commit (audit_link.go).
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
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
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return &DB{pool: pool}, nil
}

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
	db.pool.Close()
	return nil
}

// lockUser takes the user's row lock that serializes the writes the
// secret quota counts. FOR NO KEY UPDATE, not FOR UPDATE: it conflicts
// with itself, which is all the serialization needs, but not with the KEY
// SHARE locks that foreign-key checks take, so creating a token, a profile
// or a secret's new version for the user does not wait for it.
const lockUser = `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`

// lockObject takes the transaction-scoped advisory lock of one object of
// a user, keyed by a 64-bit hash of the user's id and the object's id:
// two keys that collide only make two writes take turns.
const lockObject = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`

// userExists reads whether the user exists, taking no lock: a write that
// needs the user to stay takes its lock (LockUser) or inserts a row whose
// foreign key holds it.
const userExists = `SELECT EXISTS (SELECT FROM users WHERE id = $1)`

// Update runs fn in a read-committed transaction of the user, under
// row-level security, taking no lock of its own, and then links the audit
// events of every committed write (its own among them) before it returns.
// Returns ENOTFOUND if the user does not exist, or fn's error unchanged.
func (db *DB) Update(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	err := db.userTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, userID, func(ptx pgx.Tx) error {
		var exists bool
		if err := ptx.QueryRow(ctx, userExists, userID).Scan(&exists); err != nil {
			return fmt.Errorf("read user %s: %w", userID, err)
		}
		if !exists {
			return vault.Errorf(vault.ENOTFOUND, "user not found")
		}
		return fn(&tx{tx: ptx, userID: userID})
	})
	if err != nil {
		return err
	}
	db.linkAfter(ctx)
	return nil
}

// View runs fn in a read-only transaction over one snapshot (repeatable
// read, which never fails a read-only transaction). It returns fn's error
// unchanged.
func (db *DB) View(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.userTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, userID, func(ptx pgx.Tx) error {
		return fn(&tx{tx: ptx, userID: userID})
	})
}

// LockUser takes the user's row lock until the transaction ends. Returns
// ENOTFOUND if the user does not exist.
func (t *tx) LockUser(ctx context.Context) error {
	var one int
	err := t.tx.QueryRow(ctx, lockUser, t.userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.Errorf(vault.ENOTFOUND, "user not found")
	} else if err != nil {
		return fmt.Errorf("lock user %s: %w", t.userID, err)
	}
	return nil
}

// Lock takes the advisory lock of the user's object id until the
// transaction ends.
func (t *tx) Lock(ctx context.Context, id string) error {
	if _, err := t.tx.Exec(ctx, lockObject, t.userID+"/"+id); err != nil {
		return fmt.Errorf("lock %s: %w", id, err)
	}
	return nil
}
