package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/envvault/envvault/vault"
)

// secretCols are the columns scanSecret reads, for a query over secrets s.
// The grants of an `agents` secret come back sorted by id (the "C"
// collation of the column is byte order, as Go sorts); an `all` secret has
// none, and skips the lookup.
const secretCols = `s.id, s.user_id, s.name, s.scope, s.description, s.version,
	s.sealed_value, s.sealed_key, s.master_key_id, s.created_at, s.updated_at,
	CASE WHEN s.scope = 'agents' THEN
		ARRAY(SELECT g.profile_id FROM secret_grants g WHERE g.secret_id = s.id ORDER BY g.profile_id)
	END`

func scanSecret(row pgx.Row) (*vault.Secret, error) {
	var s vault.Secret
	var scope string
	err := row.Scan(&s.ID, &s.UserID, &s.Name, &scope, &s.Description, &s.Version,
		&s.SealedValue, &s.SealedKey, &s.MasterKeyID, &s.CreatedAt, &s.UpdatedAt, &s.ProfileIDs)
	if err != nil {
		return nil, err
	}
	s.Scope = vault.Scope(scope)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	if len(s.ProfileIDs) == 0 {
		s.ProfileIDs = nil
	}
	return &s, nil
}

func (t *tx) querySecrets(ctx context.Context, sql string, args ...any) ([]*vault.Secret, error) {
	rows, err := t.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, convert(err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vault.Secret, error) { return scanSecret(row) })
	if err != nil {
		return nil, convert(err)
	}
	return list, nil
}

// Secret returns a secret by id. Returns ENOTFOUND if it does not exist.
func (t *tx) Secret(ctx context.Context, id string) (*vault.Secret, error) {
	s, err := scanSecret(t.tx.QueryRow(ctx, `SELECT `+secretCols+` FROM secrets s WHERE s.id = $1 AND s.user_id = $2`, id, t.userID))
	if err != nil {
		return nil, convertNotFound(err, "secret")
	}
	return s, nil
}

// Secrets returns up to f.Limit secrets ordered by name then id, after
// f.After, whose names contain f.Query (case-insensitively).
func (t *tx) Secrets(ctx context.Context, f vault.ListFilter) ([]*vault.Secret, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	where, args := t.listWhere("s", f)
	list, err := t.querySecrets(ctx, `SELECT `+secretCols+` FROM secrets s WHERE `+where+
		` ORDER BY s.name, s.id LIMIT `+strconv.Itoa(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return list, nil
}

// SecretsNamed returns every secret of the given name, ordered by id.
func (t *tx) SecretsNamed(ctx context.Context, name string) ([]*vault.Secret, error) {
	list, err := t.querySecrets(ctx, `SELECT `+secretCols+` FROM secrets s WHERE s.user_id = $1 AND s.name = $2 ORDER BY s.id`,
		t.userID, name)
	if err != nil {
		return nil, fmt.Errorf("read secrets named %s: %w", name, err)
	}
	return list, nil
}

// CountSecrets returns how many secrets the user holds.
func (t *tx) CountSecrets(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM secrets WHERE user_id = $1`, t.userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count secrets: %w", err)
	}
	return n, nil
}

// CreateSecret inserts a secret with its grants. Returns ECONFLICT if a
// uniqueness rule of the database is broken.
func (t *tx) CreateSecret(ctx context.Context, s *vault.Secret) error {
	if err := t.checkOwner("secret", s.ID, s.UserID); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO secrets (id, user_id, name, scope, description, version,
			sealed_value, sealed_key, master_key_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		s.ID, t.userID, s.Name, string(s.Scope), s.Description, s.Version,
		s.SealedValue, s.SealedKey, s.MasterKeyID, s.CreatedAt, s.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create secret %s: %w", s.ID, convert(err))
	}
	if err := t.insertGrants(ctx, s); err != nil {
		return fmt.Errorf("create secret %s: %w", s.ID, err)
	}
	return nil
}

// insertGrants grants s to s.ProfileIDs. That they are the user's profiles
// is the service's rule, checked before; the schema's foreign key only
// knows that a profile exists. So the grant's user is read from the
// profile, joined on the transaction's user: a profile that is not the
// user's gives a NULL user, which the column's NOT NULL (and, for the
// service's role, the row-level security policy) refuses, and the
// statement fails whole. The failure stays an internal error, as
// it only comes from a caller that skipped the service's check.
func (t *tx) insertGrants(ctx context.Context, s *vault.Secret) error {
	if len(s.ProfileIDs) == 0 {
		return nil
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO secret_grants (secret_id, profile_id, user_id, name)
		SELECT $1, g.id, p.user_id, $2 FROM unnest($4::text[]) AS g(id)
		LEFT JOIN profiles p ON p.id = g.id AND p.user_id = $3`,
		s.ID, s.Name, t.userID, s.ProfileIDs)
	if err != nil {
		return fmt.Errorf("grant profiles: %w", convert(err))
	}
	return nil
}

// UpdateSecret replaces a secret's row and grants. Returns ENOTFOUND if it
// does not exist, ECONFLICT if a uniqueness rule is broken.
func (t *tx) UpdateSecret(ctx context.Context, s *vault.Secret) error {
	if s.UserID != t.userID {
		return vault.Errorf(vault.ENOTFOUND, "secret not found")
	}
	tag, err := t.tx.Exec(ctx, `UPDATE secrets SET name = $3, scope = $4, description = $5, version = $6,
			sealed_value = $7, sealed_key = $8, master_key_id = $9, updated_at = $10
		WHERE id = $1 AND user_id = $2`,
		s.ID, t.userID, s.Name, string(s.Scope), s.Description, s.Version,
		s.SealedValue, s.SealedKey, s.MasterKeyID, s.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update secret %s: %w", s.ID, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "secret not found")
	}
	// The grants are replaced whole: they carry the name, which may have
	// changed, and the old set must be gone before the unique
	// (profile_id, name) index checks the new one.
	if _, err := t.tx.Exec(ctx, `DELETE FROM secret_grants WHERE secret_id = $1`, s.ID); err != nil {
		return fmt.Errorf("update secret %s: revoke grants: %w", s.ID, err)
	}
	if err := t.insertGrants(ctx, s); err != nil {
		return fmt.Errorf("update secret %s: %w", s.ID, err)
	}
	return nil
}

// DeleteSecret deletes a secret and its grants. Returns ENOTFOUND if it
// does not exist.
func (t *tx) DeleteSecret(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM secrets WHERE id = $1 AND user_id = $2`, id, t.userID)
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "secret not found")
	}
	return nil
}

// forProfile is the one query behind SecretsForProfile. The profile is the
// left side, so an unknown profile, or another user's, gives no row at all
// (ENOTFOUND), while a profile that receives nothing gives one row of NULLs.
//
// Its cost is bounded by the user's own rows, whatever the size of the
// tables: the secrets come from the secrets_user_name index (the planner
// derives s.user_id = $2 from the join), the grant test names the profile
// by parameter, not by p.id, so PostgreSQL runs it once, as a hashed set of
// this profile's grants (from the secret_grants_profile_name_key index), not
// once per secret; and the grant list of an `agents` secret is an
// index-only scan of secret_grants_pkey.
const forProfile = `SELECT ` + secretCols + `
	FROM profiles p
	LEFT JOIN secrets s ON s.user_id = p.user_id
		AND (s.scope = 'all' OR EXISTS (
			SELECT 1 FROM secret_grants g WHERE g.secret_id = s.id AND g.profile_id = $1))
	WHERE p.id = $1 AND p.user_id = $2`

// SecretsForProfile returns, in one query, the sealed secrets of userID
// that the profile may receive: every ScopeAll secret and the ScopeAgents
// secrets that grant it. Returns ENOTFOUND if the profile does not exist or
// is not userID's.
func (db *DB) SecretsForProfile(ctx context.Context, userID, profileID string) ([]*vault.Secret, error) {
	var list []*vault.Secret
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(forProfile, profileID, userID).Query(func(rows pgx.Rows) (err error) {
			list, err = scanForProfile(rows)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read secrets for profile %s: %w", profileID, err)
	}
	return list, nil
}

// scanForProfile reads the rows of forProfile.
func scanForProfile(rows pgx.Rows) ([]*vault.Secret, error) {
	var (
		list    []*vault.Secret
		profile bool
		id      pgtype.Text
		userCol pgtype.Text
		name    pgtype.Text
		scope   pgtype.Text
		desc    pgtype.Text
		version pgtype.Int4
		mkID    pgtype.Text
		created pgtype.Timestamptz
		updated pgtype.Timestamptz
	)
	for rows.Next() {
		profile = true
		var s vault.Secret
		err := rows.Scan(&id, &userCol, &name, &scope, &desc, &version,
			&s.SealedValue, &s.SealedKey, &mkID, &created, &updated, &s.ProfileIDs)
		if err != nil {
			return nil, err
		}
		if !id.Valid { // the profile receives no secret
			continue
		}
		s.ID, s.UserID, s.Name, s.Scope = id.String, userCol.String, name.String, vault.Scope(scope.String)
		s.Description, s.Version, s.MasterKeyID = desc.String, int(version.Int32), mkID.String
		s.CreatedAt, s.UpdatedAt = created.Time.UTC(), updated.Time.UTC()
		if len(s.ProfileIDs) == 0 {
			s.ProfileIDs = nil
		}
		list = append(list, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !profile {
		return nil, vault.Errorf(vault.ENOTFOUND, "profile not found")
	}
	return list, nil
}
