package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

var _ vault.OAuth2FlowTx = (*tx)(nil)

const oauth2FlowCols = `id, user_id, secret_id, kind, state_hash, session_key, redirect_url, sealed_verifier,
	user_code, verification_uri, status, message, created_at, expires_at, updated_at`

func scanOAuth2Flow(row pgx.Row) (*vault.OAuth2FlowRecord, error) {
	var f vault.OAuth2FlowRecord
	var kind, status string
	if err := row.Scan(&f.ID, &f.UserID, &f.SecretID, &kind, &f.StateHash, &f.SessionKey, &f.RedirectURL, &f.SealedVerifier,
		&f.UserCode, &f.VerificationURI, &status, &f.Message, &f.CreatedAt, &f.ExpiresAt, &f.UpdatedAt); err != nil {
		return nil, err
	}
	f.Kind, f.Status = vault.OAuth2Flow(kind), vault.OAuth2FlowStatus(status)
	f.CreatedAt, f.ExpiresAt, f.UpdatedAt = f.CreatedAt.UTC(), f.ExpiresAt.UTC(), f.UpdatedAt.UTC()
	return &f, nil
}

// InsertOAuth2Flow inserts f after deleting the user's expired flows (one
// statement). Returns ENOTFOUND if the secret is not the user's.
func (t *tx) InsertOAuth2Flow(ctx context.Context, f *vault.OAuth2FlowRecord) error {
	if err := t.checkOwner("oauth2 flow", f.ID, f.UserID); err != nil {
		return err
	}
	tag, err := t.tx.Exec(ctx, `WITH expired AS (DELETE FROM oauth2_flows WHERE user_id = $2 AND expires_at <= $12)
		INSERT INTO oauth2_flows (`+oauth2FlowCols+`)
		SELECT $1, $2, id, $4, $5, $6, $7, $8, $9, $10, $11, $14, $12, $13, $15 FROM secrets WHERE id = $3 AND user_id = $2`,
		f.ID, t.userID, f.SecretID, string(f.Kind), f.StateHash, f.SessionKey, f.RedirectURL, f.SealedVerifier,
		f.UserCode, f.VerificationURI, string(f.Status), f.CreatedAt, f.ExpiresAt, f.Message, f.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert oauth2 flow %s: %w", f.ID, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "secret not found")
	}
	return nil
}

// PendingOAuth2Flows counts the user's pending flows not expired at now.
func (t *tx) PendingOAuth2Flows(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM oauth2_flows WHERE user_id = $1 AND status = 'pending' AND expires_at > $2`,
		t.userID, now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count oauth2 flows: %w", convert(err))
	}
	return n, nil
}

// OAuth2FlowByState returns the user's flow of a state hash. Returns
// ENOTFOUND.
func (t *tx) OAuth2FlowByState(ctx context.Context, stateHash []byte) (*vault.OAuth2FlowRecord, error) {
	f, err := scanOAuth2Flow(t.tx.QueryRow(ctx, `SELECT `+oauth2FlowCols+` FROM oauth2_flows WHERE state_hash = $1 AND user_id = $2`,
		stateHash, t.userID))
	if err != nil {
		return nil, fmt.Errorf("read oauth2 flow by state: %w", convertNotFound(err, "oauth2 flow"))
	}
	return f, nil
}

// OAuth2Flow returns one of the user's flows. Returns ENOTFOUND.
func (t *tx) OAuth2Flow(ctx context.Context, id string) (*vault.OAuth2FlowRecord, error) {
	f, err := scanOAuth2Flow(t.tx.QueryRow(ctx, `SELECT `+oauth2FlowCols+` FROM oauth2_flows WHERE id = $1 AND user_id = $2`,
		id, t.userID))
	if err != nil {
		return nil, fmt.Errorf("read oauth2 flow %s: %w", id, convertNotFound(err, "oauth2 flow"))
	}
	return f, nil
}

// UpdateOAuth2Flow writes f's status, message and update time. Returns
// ENOTFOUND.
func (t *tx) UpdateOAuth2Flow(ctx context.Context, f *vault.OAuth2FlowRecord) error {
	tag, err := t.tx.Exec(ctx, `UPDATE oauth2_flows SET status = $3, message = $4, updated_at = $5 WHERE id = $1 AND user_id = $2`,
		f.ID, t.userID, string(f.Status), f.Message, f.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update oauth2 flow %s: %w", f.ID, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "oauth2 flow not found")
	}
	return nil
}

// DeleteOAuth2Flow deletes one of the user's flows. Returns ENOTFOUND if
// it is gone (of two transactions deleting it, the second waits for the
// first and then finds none).
func (t *tx) DeleteOAuth2Flow(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM oauth2_flows WHERE id = $1 AND user_id = $2`, id, t.userID)
	if err != nil {
		return fmt.Errorf("delete oauth2 flow %s: %w", id, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "oauth2 flow not found")
	}
	return nil
}
