package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/envvault/envvault/vault"
)

var _ vault.OAuth2FlowTx = (*tx)(nil)

const oauth2FlowColumns = `id, user_id, secret_id, kind, state_hash, session_key, redirect_url, sealed_verifier,
	user_code, verification_uri, status, message, created_at, expires_at, updated_at`

func scanOAuth2Flow(rows *sql.Rows) (*vault.OAuth2FlowRecord, error) {
	var f vault.OAuth2FlowRecord
	var kind, status string
	var created, expires, updated int64
	if err := rows.Scan(&f.ID, &f.UserID, &f.SecretID, &kind, &f.StateHash, &f.SessionKey, &f.RedirectURL, &f.SealedVerifier,
		&f.UserCode, &f.VerificationURI, &status, &f.Message, &created, &expires, &updated); err != nil {
		return nil, err
	}
	f.Kind, f.Status = vault.OAuth2Flow(kind), vault.OAuth2FlowStatus(status)
	f.CreatedAt, f.ExpiresAt, f.UpdatedAt = fromMicros(created), fromMicros(expires), fromMicros(updated)
	return &f, nil
}

// InsertOAuth2Flow inserts f after deleting the user's expired flows.
// Returns ENOTFOUND if the secret is not the user's.
func (t *tx) InsertOAuth2Flow(ctx context.Context, f *vault.OAuth2FlowRecord) error {
	if err := t.checkOwner("oauth2 flow", f.ID, f.UserID); err != nil {
		return err
	}
	return t.atomically(ctx, func() error {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM oauth2_flows WHERE user_id = ? AND expires_at <= ?`,
			t.userID, micros(f.CreatedAt)); err != nil {
			return fmt.Errorf("delete expired oauth2 flows: %w", err)
		}
		res, err := t.tx.ExecContext(ctx, `INSERT INTO oauth2_flows (`+oauth2FlowColumns+`)
			SELECT ?, ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM secrets WHERE id = ? AND user_id = ?`,
			f.ID, t.userID, string(f.Kind), f.StateHash, f.SessionKey, f.RedirectURL, f.SealedVerifier,
			f.UserCode, f.VerificationURI, string(f.Status), f.Message, micros(f.CreatedAt), micros(f.ExpiresAt), micros(f.UpdatedAt),
			f.SecretID, t.userID)
		if err != nil {
			return convert(err, "insert oauth2 flow "+f.ID)
		}
		return oneRow(res, "secret")
	})
}

// PendingOAuth2Flows counts the user's pending flows not expired at now.
func (t *tx) PendingOAuth2Flows(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM oauth2_flows WHERE user_id = ? AND status = 'pending' AND expires_at > ?`,
		t.userID, micros(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count oauth2 flows: %w", err)
	}
	return n, nil
}

// OAuth2FlowByState returns the user's flow of a state hash. Returns
// ENOTFOUND.
func (t *tx) OAuth2FlowByState(ctx context.Context, stateHash []byte) (*vault.OAuth2FlowRecord, error) {
	return t.oneOAuth2Flow(ctx, `WHERE state_hash = ? AND user_id = ?`, stateHash, t.userID)
}

// OAuth2Flow returns one of the user's flows. Returns ENOTFOUND.
func (t *tx) OAuth2Flow(ctx context.Context, id string) (*vault.OAuth2FlowRecord, error) {
	return t.oneOAuth2Flow(ctx, `WHERE id = ? AND user_id = ?`, id, t.userID)
}

func (t *tx) oneOAuth2Flow(ctx context.Context, where string, args ...any) (*vault.OAuth2FlowRecord, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+oauth2FlowColumns+` FROM oauth2_flows `+where, args...)
	list, err := collect(rows, err, scanOAuth2Flow)
	if err != nil {
		return nil, fmt.Errorf("read oauth2 flow: %w", err)
	}
	if len(list) == 0 {
		return nil, notFound("oauth2 flow")
	}
	return list[0], nil
}

// UpdateOAuth2Flow writes f's status, message and update time. Returns
// ENOTFOUND.
func (t *tx) UpdateOAuth2Flow(ctx context.Context, f *vault.OAuth2FlowRecord) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE oauth2_flows SET status = ?, message = ?, updated_at = ? WHERE id = ? AND user_id = ?`,
		string(f.Status), f.Message, micros(f.UpdatedAt), f.ID, t.userID)
	if err != nil {
		return convert(err, "update oauth2 flow "+f.ID)
	}
	return oneRow(res, "oauth2 flow")
}

// DeleteOAuth2Flow deletes one of the user's flows. Returns ENOTFOUND if
// it is gone.
func (t *tx) DeleteOAuth2Flow(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM oauth2_flows WHERE id = ? AND user_id = ?`, id, t.userID)
	if err != nil {
		return convert(err, "delete oauth2 flow "+id)
	}
	return oneRow(res, "oauth2 flow")
}
