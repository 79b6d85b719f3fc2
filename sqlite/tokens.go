package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/envvault/envvault/vault"
)

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = `id, user_id, name, scope, hash, created_at, last_used_at, expires_at`

// orNull is a time column that is NULL for the zero time.
func orNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}

func fromOrNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

type scanner interface{ Scan(dest ...any) error }

func scanToken(row scanner) (*vault.Token, error) {
	var t vault.Token
	var created int64
	var used, expires sql.NullInt64
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Scope, &t.Hash, &created, &used, &expires); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt = fromMicros(created), fromOrNull(used), fromOrNull(expires)
	return &t, nil
}

func insertToken(ctx context.Context, e execer, t *vault.Token) error {
	_, err := e.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.Name, string(t.Scope), t.Hash, micros(t.CreatedAt), orNull(t.LastUsedAt), orNull(t.ExpiresAt))
	if err != nil {
		return convert(err, "insert token", conflictAs("id", "a token of this id already exists"), foreignKeyAs(notFound("user")))
	}
	return nil
}

// Token returns a token by id. Returns ENOTFOUND if it does not exist.
func (db *DB) Token(ctx context.Context, id string) (*vault.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if err != nil {
		return nil, db.unavailable(db.read, convert(err, "read token", noRowsAs(notFound("token"))))
	}
	return t, nil
}

// TouchToken sets the token's last use to at, if it is earlier.
func (db *DB) TouchToken(ctx context.Context, userID, id string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE tokens SET last_used_at = ?
		WHERE id = ? AND user_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, micros(at), id, userID, micros(at))
	if err != nil {
		return db.unavailable(db.write, fmt.Errorf("record the use of token %s: %w", id, err))
	}
	return nil
}

// Tokens returns the user's tokens, oldest first.
func (t *tx) Tokens(ctx context.Context) ([]*vault.Token, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE user_id = ? ORDER BY created_at, id`, t.userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var list []*vault.Token
	for rows.Next() {
		tok, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		list = append(list, tok)
	}
	if err := rows.Err(); err != nil {
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
// sessions. One process is the norm on SQLite: no other process is told
// (see vault.TokenFeed). Returns ENOTFOUND if the user has no such token.
func (t *tx) DeleteToken(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = ? AND user_id = ?`, id, t.userID)
	if err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	return oneRow(res, "token")
}
