package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = `id, user_id, name, scope, hash, created_at, last_used_at, expires_at`

// tokensChannel is the channel of LISTEN/NOTIFY on which a deleted token's
// id is sent to every process sharing the database (token_feed.go).
const tokensChannel = "envvault_tokens_revoked"

// orNull is a timestamptz argument that is NULL for the zero time.
func orNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromOrNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func scanToken(row pgx.Row) (*vault.Token, error) {
	var t vault.Token
	var used, expires *time.Time
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Scope, &t.Hash, &t.CreatedAt, &used, &expires); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt = t.CreatedAt.UTC(), fromOrNull(used), fromOrNull(expires)
	return &t, nil
}

func insertToken(ctx context.Context, db execer, t *vault.Token) error {
	_, err := db.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.UserID, t.Name, string(t.Scope), t.Hash, t.CreatedAt, orNull(t.LastUsedAt), orNull(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert token: %w", convert(err))
	}
	return nil
}

// Token returns a token by id. Returns ENOTFOUND if it does not exist.
// Its user is not known yet: it reads in system mode.
func (db *DB) Token(ctx context.Context, id string) (*vault.Token, error) {
	var t *vault.Token
	err := db.systemBatch(ctx, func(b *pgx.Batch) {
		b.Queue(`SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
			var err error
			t, err = scanToken(row)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read token %s: %w", id, convertNotFound(err, "token"))
	}
	return t, nil
}

// TouchToken sets the token's last use to at, if it is earlier, in the
// user's scope: one statement, one round trip.
func (db *DB) TouchToken(ctx context.Context, userID, id string, at time.Time) error {
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(`UPDATE tokens SET last_used_at = $1
			WHERE id = $2 AND user_id = $3 AND (last_used_at IS NULL OR last_used_at < $1)`, at, id, userID)
	})
	if err != nil {
		return fmt.Errorf("record the use of token %s: %w", id, err)
	}
	return nil
}

// Tokens returns the user's tokens, oldest first.
func (t *tx) Tokens(ctx context.Context) ([]*vault.Token, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE user_id = $1 ORDER BY created_at, id`, t.userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vault.Token, error) { return scanToken(row) })
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return list, nil
}

// InsertToken inserts a token of the user. Returns ECONFLICT if its id is
// taken.
func (t *tx) InsertToken(ctx context.Context, tok *vault.Token) error {
	if err := t.checkOwner("token", tok.ID, tok.UserID); err != nil {
		return err
	}
	return insertToken(ctx, t.tx, tok)
}

// DeleteToken deletes a token of the user and, by the foreign key, its
// sessions, and notifies every process listening on tokensChannel, which
// PostgreSQL delivers when (and only if) the transaction commits. Returns
// ENOTFOUND if the user has no such token.
func (t *tx) DeleteToken(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM tokens WHERE id = $1 AND user_id = $2`, id, t.userID)
	if err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "token not found")
	}
	if _, err := t.tx.Exec(ctx, `SELECT pg_notify($1, $2)`, tokensChannel, id); err != nil {
		return fmt.Errorf("notify the revocation of token %s: %w", id, err)
	}
	return nil
}
