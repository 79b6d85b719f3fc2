// Package writefloor is the SQL of a new value of a secret as envvault's
// PostgreSQL store sends it, without envvault (no sealing, no checks, no
// link pass): the floor its write benchmarks compare with
// (BenchmarkConcurrentWrites, scripts/writefloor). It runs as the
// row-level-security role, as the store does.
package writefloor

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/vault"
)

// Target is a secret of a user that a write gives a new version.
type Target struct {
	User, Secret string
}

// Write gives t a new version in one transaction of its own, in two round
// trips, as the store's write of one new value does.
func Write(ctx context.Context, pool *pgxpool.Pool, t Target) error {
	return WriteGroup(ctx, pool, []Target{t})
}

// WriteGroup gives every target a new version in one transaction, in two
// round trips, as the store's group commit does: the user's setting before
// each write's statements when the user changes, the user's check once.
func WriteGroup(ctx context.Context, pool *pgxpool.Pool, targets []Target) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	read := &pgx.Batch{}
	read.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	versions := make([]int32, len(targets))
	setting, checked := "", map[string]bool{}
	for i, t := range targets {
		if t.User != setting {
			setting = t.User
			read.Queue(`SELECT set_config('envvault.user_id', $1, true)`, t.User)
		}
		if !checked[t.User] {
			checked[t.User] = true
			read.Queue(`SELECT FROM users WHERE id = $1`, t.User)
		}
		read.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, t.User+"/"+t.Secret)
		var kept []int32
		read.Queue(`SELECT s.version, v.versions FROM secrets s CROSS JOIN LATERAL (
			SELECT array_agg(version ORDER BY version DESC) FROM secret_versions
			WHERE secret_id = s.id AND user_id = s.user_id) v(versions)
		WHERE s.id = $1 AND s.user_id = $2`, t.Secret, t.User).QueryRow(func(r pgx.Row) error { return r.Scan(&versions[i], &kept) })
	}
	if err := conn.SendBatch(ctx, read).Close(); err != nil {
		return err
	}
	write := &pgx.Batch{}
	for i, t := range targets {
		if t.User != setting {
			setting = t.User
			write.Queue(`SELECT set_config('envvault.user_id', $1, true)`, t.User)
		}
		write.Queue(`INSERT INTO secret_versions (secret_id, user_id, version, name, sealed_value, sealed_key, master_key_id, replaced_at)
			SELECT id, user_id, version, name, sealed_value, sealed_key, master_key_id, now() FROM secrets WHERE id = $1 AND user_id = $2`, t.Secret, t.User)
		write.Queue(`DELETE FROM secret_versions WHERE secret_id = $1 AND user_id = $2 AND version = ANY($3)`,
			t.Secret, t.User, []int32{versions[i] - vault.DefaultKeepVersions})
		write.Queue(`UPDATE secrets SET version = version + 1, updated_at = now() WHERE id = $1 AND user_id = $2`, t.Secret, t.User)
		write.Queue(`INSERT INTO audit_events (time, user_id, token_id, action, target_type, target_id, details)
			VALUES (now(), $1, '', 'secret.update', 'secret', $2, $3)`, t.User, t.Secret,
			map[string]any{"name": "W", "scope": "all", "profile_ids": []string{}, "version": versions[i] + 1, "changed": []string{"value"}})
	}
	write.Queue(`COMMIT`)
	return conn.SendBatch(ctx, write).Close()
}
