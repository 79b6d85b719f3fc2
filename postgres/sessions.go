package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// CreateSession inserts a session, and deletes the user's sessions that
// expired by its creation, in the user's scope: one pipeline, one
// transaction. Returns ENOTFOUND if the user or the token does not exist.
func (db *DB) CreateSession(ctx context.Context, s *vault.Session) error {
	err := db.userBatch(ctx, s.UserID, func(b *pgx.Batch) {
		b.Queue(`DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2`, s.UserID, s.CreatedAt)
		b.Queue(`INSERT INTO sessions (id, user_id, token_id, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, s.ID, s.UserID, s.TokenID, s.CreatedAt, s.LastSeenAt, s.ExpiresAt)
	})
	if err != nil {
		return fmt.Errorf("create session: %w", convert(err))
	}
	return nil
}

// Session returns a session of the user by key. Returns ENOTFOUND if it
// or its token does not exist.
func (db *DB) Session(ctx context.Context, userID, key string) (*vault.Session, error) {
	s := vault.Session{ID: key}
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		// The join: a session holds only while its token does, even if
		// the token's row went without the foreign key's cascade.
		b.Queue(`SELECT s.user_id, s.token_id, s.created_at, s.last_seen_at, s.expires_at
			FROM sessions s JOIN tokens t ON t.id = s.token_id AND t.user_id = s.user_id
			WHERE s.id = $1 AND s.user_id = $2`, key, userID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&s.UserID, &s.TokenID, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read session: %w", convertNotFound(err, "session"))
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastSeenAt.UTC(), s.ExpiresAt.UTC()
	return &s, nil
}

// TouchSession sets the session's last request to at, if it is later.
func (db *DB) TouchSession(ctx context.Context, userID, key string, at time.Time) error {
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(`UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND user_id = $3 AND last_seen_at < $1`, at, key, userID)
	})
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession deletes a session; there being none is not an error.
func (db *DB) DeleteSession(ctx context.Context, userID, key string) error {
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(`DELETE FROM sessions WHERE id = $1 AND user_id = $2`, key, userID)
	})
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
