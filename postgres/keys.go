package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// DeleteKeyCheck deletes the key check value of a master key id; there
// being none is not an error.
func (db *DB) DeleteKeyCheck(ctx context.Context, keyID string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM key_checks WHERE key_id = $1`, keyID); err != nil {
		return fmt.Errorf("delete key check %s: %w", keyID, err)
	}
	return nil
}

// keysetByPrimaryKey makes the rest of the transaction read a keyset page
// (ORDER BY the primary key, LIMIT n) by walking the primary key index.
// Under row-level security the planner cannot tell that the system-mode
// policy lets every row through (current_setting is not known when it
// plans), estimates that a few hundred rows of the table match, and would
// rather read the whole table and sort it: 100 ms a page at 100,000
// secrets instead of 2. With sorting off, the index's order is the only
// way to the ORDER BY.
func keysetByPrimaryKey(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT set_config('enable_sort', 'off', true)`); err != nil {
		return fmt.Errorf("set enable_sort: %w", err)
	}
	return nil
}

// SealedKeysOfAllUsers returns, from the secrets of every user, up to limit
// data keys not sealed under master key notKeyID, ordered by secret id and
// after afterID ("" for the first). It is for the operator's key rotation,
// not scoped to a user: it reads in system mode.
func (db *DB) SealedKeysOfAllUsers(ctx context.Context, notKeyID, afterID string, limit int) ([]vault.SealedKey, error) {
	var keys []vault.SealedKey
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		// The primary key's order is the keyset: a run that stops
		// part-way resumes by starting again, since rotated rows no
		// longer match.
		if err := keysetByPrimaryKey(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT id, user_id, sealed_key, master_key_id FROM secrets
			WHERE master_key_id <> $1 AND id > $2
			ORDER BY id LIMIT $3`, notKeyID, afterID, limit)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (vault.SealedKey, error) {
			var k vault.SealedKey
			err := row.Scan(&k.SecretID, &k.UserID, &k.Sealed, &k.MasterKeyID)
			return k, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read data keys: %w", err)
	}
	return keys, nil
}

// SwapSealedKeysOfAllUsers sets, in one statement in its own transaction,
// each swapped secret's data key to New, sealed under master key keyID,
// where it is still Old, and returns how many it set. It is for the
// operator's key rotation, not scoped to a user: it writes in system mode,
// whose policy lets it update secrets and nothing else.
func (db *DB) SwapSealedKeysOfAllUsers(ctx context.Context, keyID string, swaps []vault.KeySwap) (int, error) {
	ids := make([]string, len(swaps))
	olds := make([][]byte, len(swaps))
	news := make([][]byte, len(swaps))
	for i, s := range swaps {
		ids[i], olds[i], news[i] = s.SecretID, s.Old, s.New
	}
	var n int64
	err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) error {
		// The compare-and-swap is the WHERE: a row written since it was
		// read has another sealed key and is left as written. Under READ
		// COMMITTED an UPDATE that waits for a concurrent writer
		// re-checks the WHERE on the row that writer committed. A secret
		// whose lock a write holds is left too (swapUnlocked).
		tag, err := tx.Exec(ctx, `
			UPDATE secrets s SET sealed_key = u.new, master_key_id = $1
			FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(id, old, new)
			WHERE s.id = u.id AND `+swapUnlocked("s.sealed_key = u.old", "s.user_id", "s.id"), keyID, ids, olds, news)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("swap %d data keys: %w", len(swaps), err)
	}
	return int(n), nil
}

// AwaitSecretWrites takes and releases the lock of each key's secret in
// turn, on one connection, holding at most one at a time, so that it
// waits for the writes that hold them and never holds what a write waits
// for while it waits.
func (db *DB) AwaitSecretWrites(ctx context.Context, keys []vault.SealedKey) error {
	b := &pgx.Batch{}
	seen := map[string]bool{}
	for _, k := range keys {
		if id := k.UserID + "/" + k.SecretID; !seen[id] {
			seen[id] = true
			b.Queue(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, id)
			b.Queue(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, id)
		}
	}
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return unavailable(fmt.Errorf("await writes of %d secrets: %w", len(seen), err))
	}
	return nil
}

// swapUnlocked is the condition of a key swap: cas holds and the swap
// takes the lock of the row's secret (tx.Lock: userCol/idCol) without
// waiting. A write holds that lock from before it reads the secret until it
// commits, and writes back the data key it read (or keeps it in a version):
// swapped under it, the old key would be written back after the swap, and
// could be committed after rotation's last look. Such a row is left to the
// next pass (vault.RotateKeys). The CASE takes the lock only for a row the
// swap changes.
func swapUnlocked(cas, userCol, idCol string) string {
	return `CASE WHEN ` + cas + ` THEN pg_try_advisory_xact_lock(hashtextextended(` + userCol + ` || '/' || ` + idCol + `, 0)) ELSE false END`
}

// SealedVersionKeysOfAllUsers returns, from the kept versions of every
// user's secrets, up to limit data keys not sealed under master key
// notKeyID, ordered by secret id and version, after (afterID,
// afterVersion). It is for the operator's key rotation, not scoped to a
// user: it reads in system mode.
func (db *DB) SealedVersionKeysOfAllUsers(ctx context.Context, notKeyID, afterID string, afterVersion, limit int) ([]vault.SealedKey, error) {
	var keys []vault.SealedKey
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		if err := keysetByPrimaryKey(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT secret_id, version, user_id, sealed_key, master_key_id FROM secret_versions
			WHERE master_key_id <> $1 AND (secret_id, version) > ($2, $3)
			ORDER BY secret_id, version LIMIT $4`, notKeyID, afterID, afterVersion, limit)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (vault.SealedKey, error) {
			var k vault.SealedKey
			err := row.Scan(&k.SecretID, &k.Version, &k.UserID, &k.Sealed, &k.MasterKeyID)
			return k, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read data keys of kept versions: %w", err)
	}
	return keys, nil
}

// SwapSealedVersionKeysOfAllUsers sets, in one statement in its own
// transaction, each swapped kept version's data key to New, sealed under
// master key keyID, where it is still Old, and returns how many it set. It
// is for the operator's key rotation, not scoped to a user: it writes in
// system mode.
func (db *DB) SwapSealedVersionKeysOfAllUsers(ctx context.Context, keyID string, swaps []vault.KeySwap) (int, error) {
	ids := make([]string, len(swaps))
	versions := make([]int32, len(swaps))
	olds := make([][]byte, len(swaps))
	news := make([][]byte, len(swaps))
	for i, s := range swaps {
		ids[i], versions[i], olds[i], news[i] = s.SecretID, int32(s.Version), s.Old, s.New
	}
	var n int64
	err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE secret_versions v SET sealed_key = u.new, master_key_id = $1
			FROM unnest($2::text[], $3::int[], $4::bytea[], $5::bytea[]) AS u(secret_id, version, old, new)
			WHERE v.secret_id = u.secret_id AND v.version = u.version AND `+
			swapUnlocked("v.sealed_key = u.old", "v.user_id", "v.secret_id"),
			keyID, ids, versions, olds, news)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("swap %d data keys of kept versions: %w", len(swaps), err)
	}
	return int(n), nil
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
// over every user's secrets, their kept versions and oauth2 tokens: it reads in system
// mode.
func (db *DB) MasterKeyCounts(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT master_key_id, count(*) FROM (
			SELECT master_key_id FROM secrets UNION ALL SELECT master_key_id FROM secret_versions
			UNION ALL SELECT master_key_id FROM oauth2_connections WHERE master_key_id IS NOT NULL) k
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
