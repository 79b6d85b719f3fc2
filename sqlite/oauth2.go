package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

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
	var (
		c                           vault.OAuth2Connection
		settings, state             string
		keyID                       sql.NullString
		expires, connected, refresh sql.NullInt64
		updated                     int64
	)
	err := t.tx.QueryRowContext(ctx, `SELECT `+oauth2Cols+` FROM oauth2_connections WHERE secret_id = ? AND user_id = ?`,
		secretID, t.userID).Scan(&c.SecretID, &c.UserID, &settings, &state, &c.Status.Reason, &c.Status.Refreshable,
		&expires, &c.SealedTokens, &c.SealedKey, &keyID, &connected, &refresh, &updated)
	if err == sql.ErrNoRows {
		return nil, notFound("oauth2 connection")
	} else if err != nil {
		return nil, fmt.Errorf("read oauth2 connection of secret %s: %w", secretID, err)
	}
	if err := json.Unmarshal([]byte(settings), &c.Settings); err != nil {
		return nil, fmt.Errorf("decode oauth2 settings of secret %s: %w", secretID, err)
	}
	c.Status.State, c.MasterKeyID = vault.OAuth2State(state), keyID.String
	c.Status.ExpiresAt, c.Status.ConnectedAt, c.Status.RefreshedAt = fromNullMicros(expires),
		fromNullMicros(connected), fromNullMicros(refresh)
	c.UpdatedAt = fromMicros(updated)
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
	// WHERE true: SQLite needs it to tell the upsert's ON from a join's.
	res, err := t.tx.ExecContext(ctx, `INSERT INTO oauth2_connections (`+oauth2Cols+`)
		SELECT s.id, s.user_id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		FROM secrets s WHERE s.id = ? AND s.user_id = ? AND true
		ON CONFLICT (secret_id) DO UPDATE SET settings = excluded.settings, state = excluded.state,
			reason = excluded.reason, refreshable = excluded.refreshable, expires_at = excluded.expires_at,
			sealed_tokens = excluded.sealed_tokens, sealed_key = excluded.sealed_key,
			master_key_id = excluded.master_key_id, connected_at = excluded.connected_at,
			refreshed_at = excluded.refreshed_at, updated_at = excluded.updated_at`,
		string(settings), string(c.Status.State), c.Status.Reason, c.Status.Refreshable,
		nullMicros(c.Status.ExpiresAt), c.SealedTokens, c.SealedKey, nullString(c.MasterKeyID),
		nullMicros(c.Status.ConnectedAt), nullMicros(c.Status.RefreshedAt), micros(c.UpdatedAt),
		c.SecretID, t.userID)
	if err != nil {
		return fmt.Errorf("store oauth2 connection of secret %s: %w", c.SecretID, err)
	}
	return oneRow(res, "secret")
}

// SealedOAuth2KeysOfAllUsers returns, from the oauth2 connections of every
// user that hold tokens, up to limit data keys not sealed under master key
// notKeyID, ordered by secret id and after afterID. It is for the
// operator's key rotation, not scoped to a user.
func (db *DB) SealedOAuth2KeysOfAllUsers(ctx context.Context, notKeyID, afterID string, limit int) ([]vault.SealedKey, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT secret_id, user_id, sealed_key, master_key_id FROM oauth2_connections
		WHERE master_key_id <> ? AND secret_id > ?
		ORDER BY secret_id LIMIT ?`, notKeyID, afterID, limit)
	keys, err := collect(rows, err, func(rows *sql.Rows) (k vault.SealedKey, err error) {
		return k, rows.Scan(&k.SecretID, &k.UserID, &k.Sealed, &k.MasterKeyID)
	})
	if err != nil {
		return nil, fmt.Errorf("read data keys of oauth2 tokens: %w", err)
	}
	return keys, nil
}

// SwapSealedOAuth2KeysOfAllUsers sets, in one write transaction, each
// swapped connection's data key to New, sealed under master key keyID,
// where it is still Old (a refresh since wrote a new one), and returns how
// many it set. It is for the operator's key rotation, not scoped to a user.
func (db *DB) SwapSealedOAuth2KeysOfAllUsers(ctx context.Context, keyID string, swaps []vault.KeySwap) (int, error) {
	return db.swapKeys(ctx, `
		UPDATE oauth2_connections SET sealed_key = ?, master_key_id = ? WHERE secret_id = ? AND sealed_key = ?`,
		func(s vault.KeySwap) []any { return []any{s.New, keyID, s.SecretID, s.Old} }, swaps)
}
