package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/vault"
)

// The history of secret values (vault/history.go), in the table
// secret_versions. Every statement is scoped to the transaction's user, as
// in tx.go.

// SecretVersions returns the kept versions of a secret of the user, newest
// first, without their sealed bytes; none if the secret does not exist or
// is another user's.
func (t *tx) SecretVersions(ctx context.Context, secretID string) ([]vault.SecretVersion, error) {
	rows, err := t.tx.Query(ctx, `SELECT version, created_at, actor_token_id, replaced_at, replaced_by_token_id
		FROM secret_versions
		WHERE secret_id = $1 AND user_id = $2
		ORDER BY version DESC`, secretID, t.userID)
	if err != nil {
		return nil, fmt.Errorf("read versions of secret %s: %w", secretID, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (vault.SecretVersion, error) {
		var v vault.SecretVersion
		var created *time.Time
		var actor, replacedBy *string
		if err := row.Scan(&v.Version, &created, &actor, &v.ReplacedAt, &replacedBy); err != nil {
			return v, err
		}
		if created != nil {
			v.CreatedAt = created.UTC()
		}
		v.ReplacedAt = v.ReplacedAt.UTC()
		v.ActorTokenID, v.ReplacedByTokenID = deref(actor), deref(replacedBy)
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read versions of secret %s: %w", secretID, err)
	}
	return list, nil
}

// SecretAndVersions returns a secret of the user and its kept versions,
// newest first, in one statement. Returns ENOTFOUND if the secret does not
// exist or is another user's.
func (t *tx) SecretAndVersions(ctx context.Context, id string) (*vault.Secret, []vault.SecretVersion, error) {
	var versions []int32
	var created []*time.Time
	var actors, replacedBy []*string
	var replaced []time.Time
	s, err := scanSecret(t.tx.QueryRow(ctx, `SELECT `+secretCols+`, v.versions, v.created, v.actors, v.replaced, v.replaced_by
		FROM secrets s CROSS JOIN LATERAL (
			SELECT array_agg(version ORDER BY version DESC), array_agg(created_at ORDER BY version DESC),
				array_agg(actor_token_id ORDER BY version DESC), array_agg(replaced_at ORDER BY version DESC),
				array_agg(replaced_by_token_id ORDER BY version DESC)
			FROM secret_versions WHERE secret_id = s.id AND user_id = s.user_id) v(versions, created, actors, replaced, replaced_by)
		WHERE s.id = $1 AND s.user_id = $2`, id, t.userID), &versions, &created, &actors, &replaced, &replacedBy)
	if err != nil {
		return nil, nil, convertNotFound(err, "secret")
	}
	if len(created) != len(versions) || len(actors) != len(versions) || len(replaced) != len(versions) || len(replacedBy) != len(versions) {
		return nil, nil, fmt.Errorf("read versions of secret %s: columns of %d, %d, %d, %d and %d versions", id,
			len(versions), len(created), len(actors), len(replaced), len(replacedBy))
	}
	kept := make([]vault.SecretVersion, len(versions))
	for i, v := range versions {
		kept[i] = vault.SecretVersion{Version: int(v), ReplacedAt: replaced[i].UTC(),
			ActorTokenID: deref(actors[i]), ReplacedByTokenID: deref(replacedBy[i])}
		if created[i] != nil {
			kept[i].CreatedAt = created[i].UTC()
		}
	}
	return s, kept, nil
}

// KeptVersion returns one kept version of a secret of the user, sealed.
// Returns ENOTFOUND if the secret does not exist, is another user's, or
// keeps no such version.
func (t *tx) KeptVersion(ctx context.Context, secretID string, version int) (*vault.KeptVersion, error) {
	v := &vault.KeptVersion{SecretID: secretID, UserID: t.userID, Version: version}
	var created *time.Time
	var actor, replacedBy *string
	err := t.tx.QueryRow(ctx, `SELECT name, sealed_value, sealed_key, master_key_id,
			created_at, actor_token_id, replaced_at, replaced_by_token_id
		FROM secret_versions
		WHERE secret_id = $1 AND user_id = $2 AND version = $3`, secretID, t.userID, version).
		Scan(&v.Name, &v.SealedValue, &v.SealedKey, &v.MasterKeyID, &created, &actor, &v.ReplacedAt, &replacedBy)
	if err != nil {
		return nil, fmt.Errorf("read version %d of secret %s: %w", version, secretID, convertNotFound(err, "secret version"))
	}
	if created != nil {
		v.CreatedAt = created.UTC()
	}
	v.ReplacedAt = v.ReplacedAt.UTC()
	v.ActorTokenID, v.ReplacedByTokenID = deref(actor), deref(replacedBy)
	return v, nil
}

// KeepVersion stores an earlier value of a secret of the user. Returns
// ENOTFOUND if the secret does not exist or is another user's, ECONFLICT if
// it already keeps that version: in Update's pipeline from the next call
// that reaches the server, with which it goes (the row update of the
// change that keeps it).
func (t *tx) KeepVersion(ctx context.Context, v *vault.KeptVersion) error {
	if v.UserID != t.userID {
		return vault.Errorf(vault.ENOTFOUND, "secret not found")
	}
	var created *time.Time
	if !v.CreatedAt.IsZero() {
		created = &v.CreatedAt
	}
	// Selecting the secret's row keeps a version from being stored for a
	// secret that is not the user's.
	return t.later(ctx, expectRow(`INSERT INTO secret_versions (secret_id, user_id, version, name,
			sealed_value, sealed_key, master_key_id, created_at, actor_token_id, replaced_at, replaced_by_token_id)
		SELECT s.id, s.user_id, $3, $4, $5, $6, $7, $8, $9, $10, $11
		FROM secrets s WHERE s.id = $1 AND s.user_id = $2`),
		[]any{v.SecretID, t.userID, v.Version, v.Name, v.SealedValue, v.SealedKey, v.MasterKeyID,
			created, nullText(v.ActorTokenID), v.ReplacedAt, nullText(v.ReplacedByTokenID)},
		func(_ pgconn.CommandTag, err error) error {
			if isNoRow(err) {
				return vault.Errorf(vault.ENOTFOUND, "secret not found")
			}
			if err != nil {
				return fmt.Errorf("keep version %d of secret %s: %w", v.Version, v.SecretID, convertVersion(err))
			}
			return nil
		})
}

// convertVersion is convert, with the message of a version kept twice.
func convertVersion(err error) error {
	err = convert(err)
	if vault.ErrorCode(err) == vault.ECONFLICT {
		return &vault.Error{Code: vault.ECONFLICT, Field: "version", Message: "version: this secret already keeps this version"}
	}
	return err
}

// DeleteVersions deletes the listed kept versions of a secret of the user,
// each by its key; in Update's pipeline it goes with the next statement.
func (t *tx) DeleteVersions(ctx context.Context, secretID string, versions []int) error {
	return t.later(ctx, `DELETE FROM secret_versions WHERE secret_id = $1 AND user_id = $2 AND version = ANY($3)`,
		[]any{secretID, t.userID, versions}, failed("delete versions of secret %s", secretID))
}
