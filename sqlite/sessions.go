package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/envvault/envvault/vault"
)

// CreateSession inserts a session, and deletes the user's sessions that
// expired by its creation, in one transaction. Returns ENOTFOUND if the
// user or the token does not exist.
func (db *DB) CreateSession(ctx context.Context, s *vault.Session) error {
	return db.writeTx(ctx, func(stx *sql.Tx) error {
		if _, err := stx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?`,
			s.UserID, micros(s.CreatedAt)); err != nil {
			return fmt.Errorf("delete ended sessions: %w", err)
		}
		_, err := stx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, token_id, created_at, last_seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, s.ID, s.UserID, s.TokenID, micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.ExpiresAt))
		if err != nil {
			return convert(err, "insert session", foreignKeyAs(notFound("token")), conflictAs("id", "a session of this id already exists"))
		}
		return nil
	})
}

// Session returns a session of the user by key. Returns ENOTFOUND if it
// or its token does not exist.
func (db *DB) Session(ctx context.Context, userID, key string) (*vault.Session, error) {
	s := vault.Session{ID: key}
	var created, seen, expires int64
	// The join: a session holds only while its token does, even if the
	// token's row went without the foreign key's cascade.
	err := db.read.QueryRowContext(ctx, `SELECT s.user_id, s.token_id, s.created_at, s.last_seen_at, s.expires_at
		FROM sessions s JOIN tokens t ON t.id = s.token_id AND t.user_id = s.user_id
		WHERE s.id = ? AND s.user_id = ?`, key, userID).Scan(&s.UserID, &s.TokenID, &created, &seen, &expires)
	if err != nil {
		return nil, db.unavailable(db.read, convert(err, "read session", noRowsAs(notFound("session"))))
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return &s, nil
}

// TouchSession sets the session's last request to at, if it is later.
func (db *DB) TouchSession(ctx context.Context, userID, key string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ? AND user_id = ? AND last_seen_at < ?`,
		micros(at), key, userID, micros(at))
	if err != nil {
		return db.unavailable(db.write, fmt.Errorf("touch session: %w", err))
	}
	return nil
}

// DeleteSession deletes a session; there being none is not an error.
func (db *DB) DeleteSession(ctx context.Context, userID, key string) error {
	if _, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ?`, key, userID); err != nil {
		return db.unavailable(db.write, fmt.Errorf("delete session: %w", err))
	}
	return nil
}
