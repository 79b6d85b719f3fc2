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
	"github.com/jackc/pgx/v5/pgconn"
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

// CreateUser inserts a user and its first token, and appends events to
// the audit trail, in one transaction. Returns ECONFLICT if either id is
// taken.
func (db *DB) CreateUser(ctx context.Context, u *vault.User, t *vault.Token, events ...*vault.AuditEvent) error {
	err := db.userTx(ctx, readWrite, u.ID, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)`,
			u.ID, u.Name, u.CreatedAt); err != nil {
			return fmt.Errorf("insert user: %w", convert(err))
		}
		if err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		return appendAudits(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	return nil
}

// CreateToken adds a token for an existing user, and appends events to the
// audit trail, in one transaction. Returns ENOTFOUND if the user does not
// exist, ECONFLICT if the token id is taken.
func (db *DB) CreateToken(ctx context.Context, t *vault.Token, events ...*vault.AuditEvent) error {
	err := db.userTx(ctx, readWrite, t.UserID, func(tx pgx.Tx) error {
		if err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		return appendAudits(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	return nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertToken(ctx context.Context, db execer, t *vault.Token) error {
	_, err := db.Exec(ctx, `INSERT INTO tokens (id, user_id, hash, created_at) VALUES ($1, $2, $3, $4)`,
		t.ID, t.UserID, t.Hash, t.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert token: %w", convert(err))
	}
	return nil
}

// Token returns a token by id. Returns ENOTFOUND if it does not exist.
// Its user is not known yet: it reads in system mode.
func (db *DB) Token(ctx context.Context, id string) (*vault.Token, error) {
	var t vault.Token
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(`SELECT id, user_id, hash, created_at FROM tokens WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
			return row.Scan(&t.ID, &t.UserID, &t.Hash, &t.CreatedAt)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read token %s: %w", id, convertNotFound(err, "token"))
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return &t, nil
}

// KeyChecks returns the stored key check values, ordered by key id.
func (db *DB) KeyChecks(ctx context.Context) ([]vault.KeyCheck, error) {
	rows, err := db.pool.Query(ctx, `SELECT key_id, sealed FROM key_checks ORDER BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("read key checks: %w", err)
	}
	checks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (vault.KeyCheck, error) {
		var c vault.KeyCheck
		err := row.Scan(&c.KeyID, &c.Sealed)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read key checks: %w", err)
	}
	return checks, nil
}

// PutKeyCheck stores a key check value, replacing one of the same key id.
func (db *DB) PutKeyCheck(ctx context.Context, c vault.KeyCheck) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO key_checks (key_id, sealed) VALUES ($1, $2)
		ON CONFLICT (key_id) DO UPDATE SET sealed = EXCLUDED.sealed`, c.KeyID, c.Sealed)
	if err != nil {
		return fmt.Errorf("store key check %s: %w", c.KeyID, err)
	}
	return nil
}

// MasterKeyCounts returns how many data keys each master key id seals,
// over every user's secrets and their kept versions: it reads in system
// mode.
func (db *DB) MasterKeyCounts(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT master_key_id, count(*) FROM (
			SELECT master_key_id FROM secrets UNION ALL SELECT master_key_id FROM secret_versions) k
			GROUP BY master_key_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			counts[id] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("count data keys: %w", err)
	}
	return counts, nil
}

// Unique constraints and indexes of the schema whose violation is a rule
// the user can break; see migrations/postgres.
const (
	secretsAllNameKey    = "secrets_all_name_key"
	grantsProfileNameKey = "secret_grants_profile_name_key"
	profilesUserNameKey  = "profiles_user_name_key"
	tokensUserFkey       = "tokens_user_id_fkey"
)

// SQLSTATEs the store turns into vault errors.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	charNotInRepertoire = "22021" // invalid UTF-8 in text
	untranslatableChar  = "22P05" // e.g. \u0000 in jsonb
)

// convert turns a driver error the user can cause into a vault error, by
// SQLSTATE and constraint name only (never by message text), and returns
// any other error unchanged. A vault error's message is for the client: it
// names the field and the rule, never a value of the row (PostgreSQL's
// Detail, which quotes the row, is never used).
func convert(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case uniqueViolation:
		switch pe.ConstraintName {
		case secretsAllNameKey:
			return &vault.Error{Code: vault.ECONFLICT, Field: "name",
				Message: "name: another secret of this name is already given to all profiles"}
		case grantsProfileNameKey:
			return &vault.Error{Code: vault.ECONFLICT, Field: "profile_ids",
				Message: "profile_ids: another secret of this name is already granted to one of these profiles"}
		case profilesUserNameKey:
			return &vault.Error{Code: vault.ECONFLICT, Field: "name",
				Message: "name: you already have a profile of this name"}
		default:
			// A primary key: a reused id.
			return vault.Errorf(vault.ECONFLICT, "the object already exists")
		}
	case foreignKeyViolation:
		if pe.ConstraintName == tokensUserFkey {
			return vault.Errorf(vault.ENOTFOUND, "user not found")
		}
	case charNotInRepertoire, untranslatableChar:
		return vault.Errorf(vault.EINVALID, "text must be valid UTF-8 without NUL characters")
	}
	return err
}

// convertNotFound is convert that also turns "no rows" into ENOTFOUND
// about what.
func convertNotFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.Errorf(vault.ENOTFOUND, "%s not found", what)
	}
	return convert(err)
}
