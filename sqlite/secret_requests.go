package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/envvault/envvault/vault"
)

const secretRequestColumns = `id, user_id, profile_id, names, task_ids, status, created_at, updated_at, expires_at, answered_at, asks`

func scanSecretRequest(rows *sql.Rows) (*vault.SecretRequest, error) {
	var r vault.SecretRequest
	var names, tasks, asks, status string
	var created, updated, expires int64
	var answered sql.NullInt64
	if err := rows.Scan(&r.ID, &r.UserID, &r.ProfileID, &names, &tasks, &status, &created, &updated, &expires, &answered, &asks); err != nil {
		return nil, err
	}
	if err := errors.Join(json.Unmarshal([]byte(names), &r.Names), json.Unmarshal([]byte(tasks), &r.TaskIDs),
		json.Unmarshal([]byte(asks), &r.Asks)); err != nil {
		return nil, fmt.Errorf("decode secret request %s: %w", r.ID, err)
	}
	r.Status = vault.RequestStatus(status)
	r.CreatedAt, r.UpdatedAt, r.ExpiresAt = fromMicros(created), fromMicros(updated), fromMicros(expires)
	r.AnsweredAt = fromNullMicros(answered)
	return &r, nil
}

func querySecretRequests(ctx context.Context, q queryer, query string, args ...any) ([]*vault.SecretRequest, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	return collect(rows, err, scanSecretRequest)
}

// secretRequestJSON encodes a request's names, task ids and asks; nil
// lists are stored empty.
func secretRequestJSON(r *vault.SecretRequest) (names, tasks, asks string, err error) {
	n, err1 := json.Marshal(nonNilList(r.Names))
	t, err2 := json.Marshal(nonNil(r.TaskIDs))
	a, err3 := json.Marshal(nonNilList(r.Asks))
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", "", "", fmt.Errorf("encode secret request %s: %w", r.ID, err)
	}
	return string(n), string(t), string(a), nil
}

func nonNilList[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

const pendingRequestTaken = "the profile has a pending secret request already"

// CreateSecretRequest inserts a request. Returns ECONFLICT if its profile
// has a pending request (secret_requests_pending_key) or its id is taken.
func (t *tx) CreateSecretRequest(ctx context.Context, r *vault.SecretRequest) error {
	if err := t.checkOwner("secret request", r.ID, r.UserID); err != nil {
		return err
	}
	names, tasks, asks, err := secretRequestJSON(r)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO secret_requests (`+secretRequestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, t.userID, r.ProfileID, names, tasks, string(r.Status), micros(r.CreatedAt), micros(r.UpdatedAt), micros(r.ExpiresAt), nullMicros(r.AnsweredAt), asks)
	if err != nil {
		return convert(err, "create secret request "+r.ID, uniqueAs("profile_id", pendingRequestTaken))
	}
	return nil
}

// UpdateSecretRequest replaces a request's names, tasks, status and times.
// Returns ENOTFOUND if it does not exist, ECONFLICT if it would make a
// second pending request of its profile.
func (t *tx) UpdateSecretRequest(ctx context.Context, r *vault.SecretRequest) error {
	if err := t.checkOwner("secret request", r.ID, r.UserID); err != nil {
		return err
	}
	names, tasks, asks, err := secretRequestJSON(r)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, `UPDATE secret_requests SET names = ?, task_ids = ?, status = ?, updated_at = ?, expires_at = ?, answered_at = ?, asks = ?
		WHERE id = ? AND user_id = ?`,
		names, tasks, string(r.Status), micros(r.UpdatedAt), micros(r.ExpiresAt), nullMicros(r.AnsweredAt), asks, r.ID, t.userID)
	if err != nil {
		return convert(err, "update secret request "+r.ID, uniqueAs("profile_id", pendingRequestTaken))
	}
	return oneRow(res, "secret request")
}

// SecretRequest returns a request by id. Returns ENOTFOUND if it does not
// exist or is another user's.
func (t *tx) SecretRequest(ctx context.Context, id string) (*vault.SecretRequest, error) {
	return t.oneSecretRequest(ctx, `WHERE id = ? AND user_id = ?`, id, t.userID)
}

// PendingSecretRequest returns the profile's pending request. Returns
// ENOTFOUND if it has none.
func (t *tx) PendingSecretRequest(ctx context.Context, profileID string) (*vault.SecretRequest, error) {
	return t.oneSecretRequest(ctx, `WHERE user_id = ? AND profile_id = ? AND status = 'pending'`, t.userID, profileID)
}

func (t *tx) oneSecretRequest(ctx context.Context, where string, args ...any) (*vault.SecretRequest, error) {
	list, err := querySecretRequests(ctx, t.tx, `SELECT `+secretRequestColumns+` FROM secret_requests `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read secret request: %w", err)
	}
	if len(list) == 0 {
		return nil, notFound("secret request")
	}
	return list[0], nil
}

// SecretRequests returns up to limit requests, the pending ones first,
// then newest first.
func (t *tx) SecretRequests(ctx context.Context, limit int) ([]*vault.SecretRequest, error) {
	if limit <= 0 {
		return nil, nil
	}
	list, err := querySecretRequests(ctx, t.tx, `SELECT `+secretRequestColumns+` FROM secret_requests WHERE user_id = ?
		ORDER BY status <> 'pending', created_at DESC, id DESC LIMIT ?`, t.userID, limit)
	if err != nil {
		return nil, fmt.Errorf("list secret requests: %w", err)
	}
	return list, nil
}

// DueSecretRequests returns up to limit pending requests of any user whose
// expiry is not after now, oldest expiry first.
func (db *DB) DueSecretRequests(ctx context.Context, now time.Time, limit int) ([]*vault.SecretRequest, error) {
	list, err := querySecretRequests(ctx, db.read, `SELECT `+secretRequestColumns+` FROM secret_requests
		WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`, micros(now), max(limit, 0))
	if err != nil {
		return nil, db.unavailable(db.read, fmt.Errorf("read due secret requests: %w", err))
	}
	return list, nil
}

// PendingSecretRequests returns up to limit pending requests of any user,
// oldest first.
func (db *DB) PendingSecretRequests(ctx context.Context, limit int) ([]*vault.SecretRequest, error) {
	list, err := querySecretRequests(ctx, db.read, `SELECT `+secretRequestColumns+` FROM secret_requests
		WHERE status = 'pending' ORDER BY created_at, id LIMIT ?`, max(limit, 0))
	if err != nil {
		return nil, db.unavailable(db.read, fmt.Errorf("read pending secret requests: %w", err))
	}
	return list, nil
}
