package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// The oauth2 connections of oauth2 secrets (vault/oauth2.go): one row per
// secret, its settings as JSON, its tokens sealed under a data key of
// their own.

const oauth2Cols = `secret_id, user_id, settings, state, reason, refreshable, expires_at,
	sealed_tokens, sealed_key, master_key_id, connected_at, refreshed_at, updated_at`

// OAuth2Connection returns an oauth2 secret's connection. Returns
// ENOTFOUND if there is none.
func (t *tx) OAuth2Connection(ctx context.Context, secretID string) (*vault.OAuth2Connection, error) {
	var c vault.OAuth2Connection
	var settings []byte
	var state string
	var keyID *string
	err := t.tx.QueryRow(ctx, `SELECT `+oauth2Cols+` FROM oauth2_connections WHERE secret_id = $1 AND user_id = $2`,
		secretID, t.userID).Scan(&c.SecretID, &c.UserID, &settings, &state, &c.Status.Reason, &c.Status.Refreshable,
		&c.Status.ExpiresAt, &c.SealedTokens, &c.SealedKey, &keyID, &c.Status.ConnectedAt, &c.Status.RefreshedAt, &c.UpdatedAt)
	if err != nil {
		return nil, convertNotFound(err, "oauth2 connection")
	}
	if err := json.Unmarshal(settings, &c.Settings); err != nil {
		return nil, fmt.Errorf("decode oauth2 settings of secret %s: %w", secretID, err)
	}
	c.Status.State, c.MasterKeyID = vault.OAuth2State(state), deref(keyID)
	c.Status.ExpiresAt, c.Status.ConnectedAt, c.Status.RefreshedAt = utcPtr(c.Status.ExpiresAt),
		utcPtr(c.Status.ConnectedAt), utcPtr(c.Status.RefreshedAt)
	c.UpdatedAt = c.UpdatedAt.UTC()
	return &c, nil
}

// PutOAuth2Connection inserts or replaces the connection of c.SecretID, in
// one statement that reads the secret as the user's: another user's
// secret, or none, touches no row and answers ENOTFOUND.
func (t *tx) PutOAuth2Connection(ctx context.Context, c *vault.OAuth2Connection) error {
	if err := t.checkOwner("oauth2 connection", c.SecretID, c.UserID); err != nil {
		return err
	}
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return fmt.Errorf("encode oauth2 settings of secret %s: %w", c.SecretID, err)
	}
	return t.now(ctx, stmt{`INSERT INTO oauth2_connections (` + oauth2Cols + `)
		SELECT s.id, s.user_id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
		FROM secrets s WHERE s.id = $1 AND s.user_id = $2
		ON CONFLICT (secret_id) DO UPDATE SET settings = EXCLUDED.settings, state = EXCLUDED.state,
			reason = EXCLUDED.reason, refreshable = EXCLUDED.refreshable, expires_at = EXCLUDED.expires_at,
			sealed_tokens = EXCLUDED.sealed_tokens, sealed_key = EXCLUDED.sealed_key,
			master_key_id = EXCLUDED.master_key_id, connected_at = EXCLUDED.connected_at,
			refreshed_at = EXCLUDED.refreshed_at, updated_at = EXCLUDED.updated_at`,
		[]any{c.SecretID, t.userID, string(settings), string(c.Status.State), c.Status.Reason, c.Status.Refreshable,
			c.Status.ExpiresAt, c.SealedTokens, c.SealedKey, nullText(c.MasterKeyID), c.Status.ConnectedAt,
			c.Status.RefreshedAt, c.UpdatedAt},
		found("secret", "store oauth2 connection of secret %s", c.SecretID)})
}

// SealedOAuth2KeysOfAllUsers returns, from the oauth2 connections of every
// user that hold tokens, up to limit data keys not sealed under master key
// notKeyID, ordered by secret id and after afterID. It is for the
// operator's key rotation: it reads in system mode.
func (db *DB) SealedOAuth2KeysOfAllUsers(ctx context.Context, notKeyID, afterID string, limit int) ([]vault.SealedKey, error) {
	var keys []vault.SealedKey
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		if err := keysetByPrimaryKey(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT secret_id, user_id, sealed_key, master_key_id FROM oauth2_connections
			WHERE master_key_id <> $1 AND secret_id > $2
			ORDER BY secret_id LIMIT $3`, notKeyID, afterID, limit)
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
		return nil, fmt.Errorf("read data keys of oauth2 tokens: %w", err)
	}
	return keys, nil
}

// SwapSealedOAuth2KeysOfAllUsers sets, in one statement in its own
// transaction, each swapped connection's data key to New, sealed under
// master key keyID, where it is still Old (a refresh since wrote a new
// one), and returns how many it set. It writes in system mode.
func (db *DB) SwapSealedOAuth2KeysOfAllUsers(ctx context.Context, keyID string, swaps []vault.KeySwap) (int, error) {
	ids := make([]string, len(swaps))
	olds := make([][]byte, len(swaps))
	news := make([][]byte, len(swaps))
	for i, s := range swaps {
		ids[i], olds[i], news[i] = s.SecretID, s.Old, s.New
	}
	var n int64
	err := db.systemTx(ctx, readWrite, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE oauth2_connections c SET sealed_key = u.new, master_key_id = $1
			FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(id, old, new)
			WHERE c.secret_id = u.id AND c.sealed_key = u.old`, keyID, ids, olds, news)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("swap %d data keys of oauth2 tokens: %w", len(swaps), err)
	}
	return int(n), nil
}

// refreshLockSpace keeps the refresh locks' keys apart from the object
// locks' (lockObject hashes with seed 0).
const refreshLockSpace = 17

// LockRefresh takes a session advisory lock named by key on a connection
// of its own, shared by every process of the database, waiting until ctx
// ends; no transaction stays open. unlock releases it and gives the
// connection back; a connection whose lock state is unsure (the wait was
// cut, the unlock failed) is closed instead, which releases the lock.
func (db *DB) LockRefresh(ctx context.Context, key string) (func(), error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, unavailable(fmt.Errorf("lock refresh: acquire a connection: %w", err))
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, $2))`, key, refreshLockSpace); err != nil {
		closeConn(conn.Hijack())
		return nil, unavailable(fmt.Errorf("lock refresh: %w", err))
	}
	return func() {
		ctx := context.WithoutCancel(ctx)
		var released bool
		err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, $2))`, key, refreshLockSpace).Scan(&released)
		if err != nil || !released {
			closeConn(conn.Hijack())
			return
		}
		conn.Release()
	}, nil
}

func closeConn(c *pgx.Conn) { _ = c.Close(context.Background()) }

var _ vault.RefreshLocker = (*DB)(nil)
