// Package postgres is the vault.Store on PostgreSQL, through a pgx/v5
// connection pool.
//
// Writes of one user are serialized by a row lock on the user, taken first
// in every Update transaction, so the service's read-check-write rules hold
// at commit; the unique indexes of the schema back the rules that matter
// most, and their violations come back as vault.ECONFLICT.
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
	pool *pgxpool.Pool
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
	db.pool.Close()
	return nil
}

// lockUser takes the user's row lock that serializes the user's writes.
// FOR NO KEY UPDATE, not FOR UPDATE: it conflicts with itself, which is all
// the serialization needs, but not with the KEY SHARE locks that foreign-key
// checks take, so creating a token for a user does not wait for that user's
// secret writes.
const lockUser = `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`

// Update runs fn in a read-committed transaction that first locks the
// user's row, so writes of one user run one at a time. Returns ENOTFOUND if
// the user does not exist, or fn's error unchanged.
func (db *DB) Update(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, userID, true, func(ptx pgx.Tx) error {
		return fn(&tx{tx: ptx, userID: userID})
	})
}

// View runs fn in a read-only transaction over one snapshot (repeatable
// read, which never fails a read-only transaction). It returns fn's error
// unchanged.
func (db *DB) View(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, userID, false, func(ptx pgx.Tx) error {
		return fn(&tx{tx: ptx, userID: userID})
	})
}

// inTx runs fn in a transaction of userID, under row-level security, and
// first takes the user's row lock if lock is set.
func (db *DB) inTx(ctx context.Context, opts pgx.TxOptions, userID string, lock bool, fn func(pgx.Tx) error) error {
	return db.userTx(ctx, opts, userID, func(ptx pgx.Tx) error {
		if lock {
			var one int
			err := ptx.QueryRow(ctx, lockUser, userID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return vault.Errorf(vault.ENOTFOUND, "user not found")
			} else if err != nil {
				return fmt.Errorf("lock user %s: %w", userID, err)
			}
		}
		return fn(ptx)
	})
}
