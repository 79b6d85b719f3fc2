package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/envvault/envvault/vault"
)

// DeleteKeyCheck deletes the key check value of a master key id; there
// being none is not an error.
func (db *DB) DeleteKeyCheck(ctx context.Context, keyID string) error {
	if _, err := db.write.ExecContext(ctx, `DELETE FROM key_checks WHERE key_id = ?`, keyID); err != nil {
		return fmt.Errorf("delete key check %s: %w", keyID, err)
	}
	return nil
}

// SealedKeysOfAllUsers returns, from the secrets of every user, up to limit
// data keys not sealed under master key notKeyID, ordered by secret id and
// after afterID ("" for the first). It is for the operator's key rotation,
// not scoped to a user.
func (db *DB) SealedKeysOfAllUsers(ctx context.Context, notKeyID, afterID string, limit int) ([]vault.SealedKey, error) {
	// The primary key's order is the keyset: a run that stops part-way
	// resumes by starting again, since rotated rows no longer match.
	rows, err := db.read.QueryContext(ctx, `
		SELECT id, user_id, sealed_key, master_key_id FROM secrets
		WHERE master_key_id <> ? AND id > ?
		ORDER BY id LIMIT ?`, notKeyID, afterID, limit)
	keys, err := collect(rows, err, func(rows *sql.Rows) (k vault.SealedKey, err error) {
		return k, rows.Scan(&k.SecretID, &k.UserID, &k.Sealed, &k.MasterKeyID)
	})
	if err != nil {
		return nil, fmt.Errorf("read data keys: %w", err)
	}
	return keys, nil
}

// SwapSealedKeysOfAllUsers sets, in one write transaction, each swapped
// secret's data key to New, sealed under master key keyID, where it is
// still Old, and returns how many it set. It is for the operator's key
// rotation, not scoped to a user.
func (db *DB) SwapSealedKeysOfAllUsers(ctx context.Context, keyID string, swaps []vault.KeySwap) (int, error) {
	return db.swapKeys(ctx, `
		UPDATE secrets SET sealed_key = ?, master_key_id = ? WHERE id = ? AND sealed_key = ?`,
		func(s vault.KeySwap) []any { return []any{s.New, keyID, s.SecretID, s.Old} }, swaps)
}

// SealedVersionKeysOfAllUsers returns, from the kept versions of every
// user's secrets, up to limit data keys not sealed under master key
// notKeyID, ordered by secret id and version, after (afterID,
// afterVersion). It is for the operator's key rotation, not scoped to a
// user.
func (db *DB) SealedVersionKeysOfAllUsers(ctx context.Context, notKeyID, afterID string, afterVersion, limit int) ([]vault.SealedKey, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT secret_id, version, user_id, sealed_key, master_key_id FROM secret_versions
		WHERE master_key_id <> ? AND (secret_id, version) > (?, ?)
		ORDER BY secret_id, version LIMIT ?`, notKeyID, afterID, afterVersion, limit)
	keys, err := collect(rows, err, func(rows *sql.Rows) (k vault.SealedKey, err error) {
		return k, rows.Scan(&k.SecretID, &k.Version, &k.UserID, &k.Sealed, &k.MasterKeyID)
	})
	if err != nil {
		return nil, fmt.Errorf("read data keys of kept versions: %w", err)
	}
	return keys, nil
}

// AwaitSecretWrites returns at once: SQLite runs one write transaction at
// a time, so no write is under way outside the swap's own.
func (db *DB) AwaitSecretWrites(context.Context, []vault.SealedKey) error { return nil }

// SwapSealedVersionKeysOfAllUsers sets, in one write transaction, each
// swapped kept version's data key to New, sealed under master key keyID,
// where it is still Old, and returns how many it set. It is for the
// operator's key rotation, not scoped to a user.
func (db *DB) SwapSealedVersionKeysOfAllUsers(ctx context.Context, keyID string, swaps []vault.KeySwap) (int, error) {
	return db.swapKeys(ctx, `
		UPDATE secret_versions SET sealed_key = ?, master_key_id = ?
		WHERE secret_id = ? AND version = ? AND sealed_key = ?`,
		func(s vault.KeySwap) []any { return []any{s.New, keyID, s.SecretID, s.Version, s.Old} }, swaps)
}

// swapKeys runs the compare-and-swap update, once per swap with the
// arguments args gives, in one write transaction, and returns how many
// rows it changed.
func (db *DB) swapKeys(ctx context.Context, update string, args func(vault.KeySwap) []any, swaps []vault.KeySwap) (int, error) {
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin transaction: %w", err)
	}
	defer stx.Rollback()
	stmt, err := stx.PrepareContext(ctx, update)
	if err != nil {
		return 0, fmt.Errorf("prepare data key swap: %w", err)
	}
	defer stmt.Close()
	n := 0
	for _, s := range swaps {
		res, err := stmt.ExecContext(ctx, args(s)...)
		if err != nil {
			return 0, fmt.Errorf("swap data key of secret %s: %w", s.SecretID, err)
		}
		m, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("rows affected: %w", err)
		}
		n += int(m)
	}
	if err := stx.Commit(); err != nil {
		return 0, fmt.Errorf("commit transaction: %w", err)
	}
	return n, nil
}

// KeyChecks returns the stored key check values, ordered by key id.
func (db *DB) KeyChecks(ctx context.Context) ([]vault.KeyCheck, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT key_id, sealed FROM key_checks ORDER BY key_id`)
	checks, err := collect(rows, err, func(rows *sql.Rows) (c vault.KeyCheck, err error) {
		return c, rows.Scan(&c.KeyID, &c.Sealed)
	})
	if err != nil {
		return nil, fmt.Errorf("read key checks: %w", err)
	}
	return checks, nil
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
// over the secrets, their kept versions and oauth2 tokens.
func (db *DB) MasterKeyCounts(ctx context.Context) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT master_key_id, count(*) FROM (
		SELECT master_key_id FROM secrets UNION ALL SELECT master_key_id FROM secret_versions
		UNION ALL SELECT master_key_id FROM oauth2_connections WHERE master_key_id IS NOT NULL)
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
