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
// synchronous=NORMAL and a busy timeout on every connection. Call Migrate
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
	common.Add("_pragma", "synchronous(NORMAL)")

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
// processes at once: a migration that loses the race to another process
// fails as a whole (each runs in its own transaction), and Migrate then
// tries again while the schema version keeps moving.
func (db *DB) Migrate(ctx context.Context) (int, error) {
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
// start, so writes of every user are serialized.
func (db *DB) Update(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.run(ctx, db.write, nil, userID, fn)
}

// View runs fn in a read-only transaction scoped to userID: it sees one
// snapshot, and any write in it fails.
func (db *DB) View(ctx context.Context, userID string, fn func(vault.Tx) error) error {
	return db.run(ctx, db.read, &sql.TxOptions{ReadOnly: true}, userID, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, userID string, fn func(vault.Tx) error) error {
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

// CreateUser inserts a user and its first token, and appends events to
// the audit trail, in one transaction. Returns ECONFLICT if either id is
// taken.
func (db *DB) CreateUser(ctx context.Context, u *vault.User, t *vault.Token, events ...*vault.AuditEvent) error {
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer stx.Rollback()
	if _, err := stx.ExecContext(ctx, `INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)`,
		u.ID, u.Name, micros(u.CreatedAt)); err != nil {
		return convert(err, "insert user", conflictAs("id", "a user of this id already exists"))
	}
	if err := insertToken(ctx, stx, t); err != nil {
		return err
	}
	for _, ev := range events {
		if err := appendAudit(ctx, stx, ev); err != nil {
			return err
		}
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// CreateToken adds a token for an existing user, and appends events to the
// audit trail, in one transaction. Returns ENOTFOUND if the user does not
// exist, ECONFLICT if the token id is taken.
func (db *DB) CreateToken(ctx context.Context, t *vault.Token, events ...*vault.AuditEvent) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error {
		if err := insertToken(ctx, stx, t); err != nil {
			return err
		}
		for _, ev := range events {
			if err := appendAudit(ctx, stx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertToken(ctx context.Context, e execer, t *vault.Token) error {
	_, err := e.ExecContext(ctx, `INSERT INTO tokens (id, user_id, hash, created_at) VALUES (?, ?, ?, ?)`,
		t.ID, t.UserID, t.Hash, micros(t.CreatedAt))
	if err != nil {
		return convert(err, "insert token", conflictAs("id", "a token of this id already exists"), foreignKeyAs(notFound("user")))
	}
	return nil
}

// Token returns a token by id. Returns ENOTFOUND if it does not exist.
func (db *DB) Token(ctx context.Context, id string) (*vault.Token, error) {
	var t vault.Token
	var created int64
	err := db.read.QueryRowContext(ctx, `SELECT id, user_id, hash, created_at FROM tokens WHERE id = ?`, id).
		Scan(&t.ID, &t.UserID, &t.Hash, &created)
	if err != nil {
		return nil, convert(err, "read token", noRowsAs(notFound("token")))
	}
	t.CreatedAt = fromMicros(created)
	return &t, nil
}

// SecretsForProfile returns, in one query, the sealed secrets of userID
// that the profile may receive: every ScopeAll secret and the ScopeAgents
// secrets that grant it, ordered by name then id. Returns ENOTFOUND if the
// profile does not exist or is not userID's.
func (db *DB) SecretsForProfile(ctx context.Context, userID, profileID string) ([]*vault.Secret, error) {
	// The profile row is the left side, so a profile of the user with no
	// secrets still answers one row (of NULLs), and zero rows means the
	// profile is not the user's.
	rows, err := db.read.QueryContext(ctx, `
		SELECT p.id, `+secretColumns+`
		FROM profiles p
		LEFT JOIN secrets s ON s.user_id = p.user_id AND (
			s.scope = 'all' OR EXISTS (
				SELECT 1 FROM secret_grants g WHERE g.secret_id = s.id AND g.profile_id = p.id))
		WHERE p.id = ? AND p.user_id = ?
		ORDER BY s.name, s.id`, profileID, userID)
	if err != nil {
		return nil, fmt.Errorf("query secrets for profile: %w", err)
	}
	defer rows.Close()
	found := false
	var out []*vault.Secret
	for rows.Next() {
		found = true
		var pid string
		var ns nullSecret
		if err := rows.Scan(append([]any{&pid}, ns.dest()...)...); err != nil {
			return nil, fmt.Errorf("scan secret for profile: %w", err)
		}
		if !ns.id.Valid {
			continue
		}
		sec, err := ns.secret(userID)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read secrets for profile: %w", err)
	}
	if !found {
		return nil, notFound("profile")
	}
	return out, nil
}

// KeyChecks returns the stored key check values, ordered by key id.
func (db *DB) KeyChecks(ctx context.Context) ([]vault.KeyCheck, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT key_id, sealed FROM key_checks ORDER BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("query key checks: %w", err)
	}
	defer rows.Close()
	var out []vault.KeyCheck
	for rows.Next() {
		var c vault.KeyCheck
		if err := rows.Scan(&c.KeyID, &c.Sealed); err != nil {
			return nil, fmt.Errorf("scan key check: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read key checks: %w", err)
	}
	return out, nil
}

// PutKeyCheck stores a key check value, replacing one of the same key id.
func (db *DB) PutKeyCheck(ctx context.Context, c vault.KeyCheck) error {
	_, err := db.write.ExecContext(ctx, `
		INSERT INTO key_checks (key_id, sealed) VALUES (?, ?)
		ON CONFLICT (key_id) DO UPDATE SET sealed = excluded.sealed`, c.KeyID, c.Sealed)
	if err != nil {
		return fmt.Errorf("put key check %s: %w", c.KeyID, err)
	}
	return nil
}

// MasterKeyCounts returns how many data keys each master key id seals,
// over the secrets and their kept versions.
func (db *DB) MasterKeyCounts(ctx context.Context) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT master_key_id, count(*) FROM (
		SELECT master_key_id FROM secrets UNION ALL SELECT master_key_id FROM secret_versions)
		GROUP BY master_key_id`)
	if err != nil {
		return nil, fmt.Errorf("count data keys: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("scan data key count: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count data keys: %w", err)
	}
	return out, nil
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

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
