package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

const secretRequestCols = `id, user_id, profile_id, names, task_ids, status, created_at, updated_at, expires_at, answered_at, asks`

func scanSecretRequest(row pgx.Row) (*vault.SecretRequest, error) {
	var r vault.SecretRequest
	var status string
	err := row.Scan(&r.ID, &r.UserID, &r.ProfileID, &r.Names, &r.TaskIDs, &status, &r.CreatedAt, &r.UpdatedAt, &r.ExpiresAt, &r.AnsweredAt, &r.Asks)
	if err != nil {
		return nil, err
	}
	r.Status = vault.RequestStatus(status)
	r.CreatedAt, r.UpdatedAt, r.ExpiresAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC(), r.ExpiresAt.UTC()
	if r.AnsweredAt != nil {
		at := r.AnsweredAt.UTC()
		r.AnsweredAt = &at
	}
	if r.TaskIDs == nil {
		r.TaskIDs = []string{}
	}
	if r.Asks == nil {
		r.Asks = []vault.TaskAsk{}
	}
	return &r, nil
}

// askList stores nil as an empty list.
func askList(l []vault.TaskAsk) []vault.TaskAsk {
	if l == nil {
		return []vault.TaskAsk{}
	}
	return l
}

func collectSecretRequests(rows pgx.Rows, err error) ([]*vault.SecretRequest, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vault.SecretRequest, error) { return scanSecretRequest(row) })
}

// CreateSecretRequest inserts a request. Returns ECONFLICT if its profile
// has a pending request (secret_requests_pending_key) or its id is taken.
func (t *tx) CreateSecretRequest(ctx context.Context, r *vault.SecretRequest) error {
	if err := t.checkOwner("secret request", r.ID, r.UserID); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO secret_requests (`+secretRequestCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.ID, t.userID, r.ProfileID, requiredList(r.Names), jsonList(r.TaskIDs), string(r.Status), r.CreatedAt, r.UpdatedAt, r.ExpiresAt, r.AnsweredAt, askList(r.Asks))
	if err != nil {
		return fmt.Errorf("create secret request %s: %w", r.ID, convert(err))
	}
	return nil
}

// UpdateSecretRequest replaces a request's names, tasks, status and times.
// Returns ENOTFOUND if it does not exist, ECONFLICT if it would make a
// second pending request of its profile.
func (t *tx) UpdateSecretRequest(ctx context.Context, r *vault.SecretRequest) error {
	if r.UserID != t.userID {
		return vault.Errorf(vault.ENOTFOUND, "secret request not found")
	}
	tag, err := t.tx.Exec(ctx, `UPDATE secret_requests SET names = $3, task_ids = $4, status = $5, updated_at = $6, expires_at = $7, answered_at = $8, asks = $9
		WHERE id = $1 AND user_id = $2`,
		r.ID, t.userID, requiredList(r.Names), jsonList(r.TaskIDs), string(r.Status), r.UpdatedAt, r.ExpiresAt, r.AnsweredAt, askList(r.Asks))
	if err != nil {
		return fmt.Errorf("update secret request %s: %w", r.ID, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "secret request not found")
	}
	return nil
}

// SecretRequest returns a request by id. Returns ENOTFOUND if it does not
// exist.
func (t *tx) SecretRequest(ctx context.Context, id string) (*vault.SecretRequest, error) {
	r, err := scanSecretRequest(t.tx.QueryRow(ctx, `SELECT `+secretRequestCols+` FROM secret_requests WHERE id = $1 AND user_id = $2`, id, t.userID))
	if err != nil {
		return nil, fmt.Errorf("read secret request %s: %w", id, convertNotFound(err, "secret request"))
	}
	return r, nil
}

// PendingSecretRequest returns the profile's pending request. Returns
// ENOTFOUND if it has none.
func (t *tx) PendingSecretRequest(ctx context.Context, profileID string) (*vault.SecretRequest, error) {
	r, err := scanSecretRequest(t.tx.QueryRow(ctx, `SELECT `+secretRequestCols+` FROM secret_requests
		WHERE user_id = $1 AND profile_id = $2 AND status = 'pending'`, t.userID, profileID))
	if err != nil {
		return nil, fmt.Errorf("read pending secret request of profile %s: %w", profileID, convertNotFound(err, "secret request"))
	}
	return r, nil
}

// SecretRequests returns up to limit requests, the pending ones first,
// then newest first.
func (t *tx) SecretRequests(ctx context.Context, limit int) ([]*vault.SecretRequest, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT `+secretRequestCols+` FROM secret_requests WHERE user_id = $1
		ORDER BY status <> 'pending', created_at DESC, id DESC LIMIT `+strconv.Itoa(limit), t.userID)
	list, err := collectSecretRequests(rows, err)
	if err != nil {
		return nil, fmt.Errorf("list secret requests: %w", convert(err))
	}
	return list, nil
}

// DueSecretRequests returns up to limit pending requests of any user whose
// expiry is not after now, oldest expiry first. It reads in system mode
// (policy secret_requests_system_read, migration 00014).
func (db *DB) DueSecretRequests(ctx context.Context, now time.Time, limit int) ([]*vault.SecretRequest, error) {
	var list []*vault.SecretRequest
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+secretRequestCols+` FROM secret_requests
			WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT `+strconv.Itoa(max(limit, 0)), now)
		list, err = collectSecretRequests(rows, err)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read due secret requests: %w", err)
	}
	return list, nil
}

// PendingSecretRequests returns up to limit pending requests of any user,
// oldest first. It reads in system mode.
func (db *DB) PendingSecretRequests(ctx context.Context, limit int) ([]*vault.SecretRequest, error) {
	var list []*vault.SecretRequest
	err := db.systemTx(ctx, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+secretRequestCols+` FROM secret_requests
			WHERE status = 'pending' ORDER BY created_at, id LIMIT `+strconv.Itoa(max(limit, 0)))
		list, err = collectSecretRequests(rows, err)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read pending secret requests: %w", err)
	}
	return list, nil
}
