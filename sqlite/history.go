package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/envvault/envvault/vault"
)

// The history of secret values (vault/history.go), in the table
// secret_versions. Every statement names the transaction's user, as in
// tx.go.

// SecretAndVersions returns a secret of the user and its kept versions,
// in two reads of the one write transaction. Returns ENOTFOUND if the
// secret does not exist or is another user's.
func (t *tx) SecretAndVersions(ctx context.Context, id string) (*vault.Secret, []vault.SecretVersion, error) {
	s, err := t.Secret(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	kept, err := t.SecretVersions(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return s, kept, nil
}

// SecretVersions returns the kept versions of a secret of the user, newest
// first, without their sealed bytes; none if the secret does not exist or
// is another user's.
func (t *tx) SecretVersions(ctx context.Context, secretID string) ([]vault.SecretVersion, error) {
	rows, err := t.tx.QueryContext(ctx, `
		SELECT version, created_at, actor_token_id, replaced_at, replaced_by_token_id
		FROM secret_versions
		WHERE secret_id = ? AND user_id = ?
		ORDER BY version DESC`, secretID, t.userID)
	list, err := collect(rows, err, func(rows *sql.Rows) (vault.SecretVersion, error) {
		var v vault.SecretVersion
		var created sql.NullInt64
		var actor, replacedBy sql.NullString
		var replaced int64
		if err := rows.Scan(&v.Version, &created, &actor, &replaced, &replacedBy); err != nil {
			return v, err
		}
		if created.Valid {
			v.CreatedAt = fromMicros(created.Int64)
		}
		v.ActorTokenID, v.ReplacedAt, v.ReplacedByTokenID = actor.String, fromMicros(replaced), replacedBy.String
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read versions of secret %s: %w", secretID, err)
	}
	return list, nil
}

// KeptVersion returns one kept version of a secret of the user, sealed.
// Returns ENOTFOUND if the secret does not exist, is another user's, or
// keeps no such version.
func (t *tx) KeptVersion(ctx context.Context, secretID string, version int) (*vault.KeptVersion, error) {
	v := &vault.KeptVersion{SecretID: secretID, UserID: t.userID, Version: version}
	var created sql.NullInt64
	var actor, replacedBy sql.NullString
	var replaced int64
	err := t.tx.QueryRowContext(ctx, `
		SELECT name, sealed_value, sealed_key, master_key_id, created_at, actor_token_id, replaced_at, replaced_by_token_id
		FROM secret_versions
		WHERE secret_id = ? AND user_id = ? AND version = ?`, secretID, t.userID, version).
		Scan(&v.Name, &v.SealedValue, &v.SealedKey, &v.MasterKeyID, &created, &actor, &replaced, &replacedBy)
	if err != nil {
		return nil, convert(err, fmt.Sprintf("read version %d of secret %s", version, secretID), noRowsAs(notFound("secret version")))
	}
	if created.Valid {
		v.CreatedAt = fromMicros(created.Int64)
	}
	v.ActorTokenID, v.ReplacedAt, v.ReplacedByTokenID = actor.String, fromMicros(replaced), replacedBy.String
	return v, nil
}

// KeepVersion stores an earlier value of a secret of the user. Returns
// ENOTFOUND if the secret does not exist or is another user's, ECONFLICT if
// it already keeps that version.
func (t *tx) KeepVersion(ctx context.Context, v *vault.KeptVersion) error {
	if err := t.checkOwner("secret", v.SecretID, v.UserID); err != nil {
		return err
	}
	var created any
	if !v.CreatedAt.IsZero() {
		created = micros(v.CreatedAt)
	}
	// Selecting the secret's row keeps a version from being stored for a
	// secret that is not the user's.
	res, err := t.tx.ExecContext(ctx, `
		INSERT INTO secret_versions (secret_id, user_id, version, name, sealed_value, sealed_key, master_key_id,
			created_at, actor_token_id, replaced_at, replaced_by_token_id)
		SELECT s.id, s.user_id, ?, ?, ?, ?, ?, ?, ?, ?, ?
		FROM secrets s WHERE s.id = ? AND s.user_id = ?`,
		v.Version, v.Name, v.SealedValue, v.SealedKey, v.MasterKeyID,
		created, nullString(v.ActorTokenID), micros(v.ReplacedAt), nullString(v.ReplacedByTokenID),
		v.SecretID, t.userID)
	if err != nil {
		return convert(err, fmt.Sprintf("keep version %d of secret %s", v.Version, v.SecretID),
			conflictAs("version", "this secret already keeps this version"))
	}
	return oneRow(res, "secret")
}

// DeleteVersions deletes the listed kept versions of a secret of the user.
func (t *tx) DeleteVersions(ctx context.Context, secretID string, versions []int) error {
	list, err := json.Marshal(versions)
	if err != nil {
		return fmt.Errorf("encode versions: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `DELETE FROM secret_versions
		WHERE secret_id = ? AND user_id = ? AND version IN (SELECT value FROM json_each(?))`,
		secretID, t.userID, string(list))
	if err != nil {
		return fmt.Errorf("delete versions of secret %s: %w", secretID, err)
	}
	return nil
}
