package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/envvault/envvault/vault"
)

// secretColumns selects a secret row as nullSecret scans it, with its
// grants as a JSON array of profile ids.
const secretColumns = `s.id, s.name, s.scope, s.description, s.version, s.sealed_value, s.sealed_key,
	s.master_key_id, s.created_at, s.updated_at, s.kind,
	(SELECT json_group_array(g.profile_id) FROM secret_grants g WHERE g.secret_id = s.id)`

// nullSecret scans secretColumns; every column may be NULL, as on the
// right side of a LEFT JOIN.
type nullSecret struct {
	id, name, scope, description, masterKeyID, kind sql.NullString
	version, created, updated                       sql.NullInt64
	sealedValue, sealedKey                          []byte
	grants                                          sql.NullString
}

func (n *nullSecret) dest() []any {
	return []any{&n.id, &n.name, &n.scope, &n.description, &n.version, &n.sealedValue, &n.sealedKey,
		&n.masterKeyID, &n.created, &n.updated, &n.kind, &n.grants}
}

func (n *nullSecret) secret(userID string) (*vault.Secret, error) {
	s := &vault.Secret{
		ID: n.id.String, UserID: userID, Name: n.name.String, Scope: vault.Scope(n.scope.String),
		Description: n.description.String, Version: int(n.version.Int64),
		SealedValue: n.sealedValue, SealedKey: n.sealedKey, MasterKeyID: n.masterKeyID.String,
		CreatedAt: fromMicros(n.created.Int64), UpdatedAt: fromMicros(n.updated.Int64),
		Kind: vault.Kind(n.kind.String),
	}
	if n.grants.Valid {
		var ids []string
		if err := json.Unmarshal([]byte(n.grants.String), &ids); err != nil {
			return nil, fmt.Errorf("decode grants of secret %s: %w", s.ID, err)
		}
		if len(ids) > 0 {
			slices.Sort(ids)
			s.ProfileIDs = ids
		}
	}
	return s, nil
}

func (t *tx) querySecrets(ctx context.Context, query string, args ...any) ([]*vault.Secret, error) {
	rows, err := t.tx.QueryContext(ctx, query, args...)
	list, err := collect(rows, err, func(rows *sql.Rows) (*vault.Secret, error) {
		var ns nullSecret
		if err := rows.Scan(ns.dest()...); err != nil {
			return nil, err
		}
		return ns.secret(t.userID)
	})
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	return list, nil
}

// Secret returns a secret by id. Returns ENOTFOUND if it does not exist or
// is another user's.
func (t *tx) Secret(ctx context.Context, id string) (*vault.Secret, error) {
	list, err := t.querySecrets(ctx, `SELECT `+secretColumns+` FROM secrets s WHERE s.id = ? AND s.user_id = ?`, id, t.userID)
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", id, err)
	}
	if len(list) == 0 {
		return nil, notFound("secret")
	}
	return list[0], nil
}

// Secrets returns up to f.Limit of the user's secrets ordered by name then
// id, after f.After, whose names contain f.Query (case-insensitively for
// ASCII letters).
func (t *tx) Secrets(ctx context.Context, f vault.ListFilter) ([]*vault.Secret, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	where, args := t.listWhere("s", f)
	list, err := t.querySecrets(ctx, `SELECT `+secretColumns+` FROM secrets s WHERE `+where+
		` ORDER BY s.name, s.id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return list, nil
}

// SecretsNamed returns every secret of the user of the given name, ordered
// by id.
func (t *tx) SecretsNamed(ctx context.Context, name string) ([]*vault.Secret, error) {
	list, err := t.querySecrets(ctx, `SELECT `+secretColumns+` FROM secrets s WHERE s.user_id = ? AND s.name = ? ORDER BY s.id`,
		t.userID, name)
	if err != nil {
		return nil, fmt.Errorf("read secrets by name: %w", err)
	}
	return list, nil
}

// CountSecrets returns how many secrets the user holds.
func (t *tx) CountSecrets(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM secrets WHERE user_id = ?`, t.userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count secrets: %w", err)
	}
	return n, nil
}

const nameTaken = "another secret already holds this name for all profiles"

// CreateSecret inserts a secret with its grants. Returns ECONFLICT if the
// id is taken, another `all` secret holds the name, or a profile is already
// granted the name.
func (t *tx) CreateSecret(ctx context.Context, s *vault.Secret) error {
	if err := t.checkOwner("secret", s.ID, s.UserID); err != nil {
		return err
	}
	return t.atomically(ctx, func() error {
		_, err := t.tx.ExecContext(ctx, `
			INSERT INTO secrets (id, user_id, name, scope, description, version, sealed_value, sealed_key,
				master_key_id, created_at, updated_at, kind)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, t.userID, s.Name, string(s.Scope), s.Description, s.Version, s.SealedValue, s.SealedKey,
			s.MasterKeyID, micros(s.CreatedAt), micros(s.UpdatedAt), string(s.Kind.OrValue()))
		if err != nil {
			return t.insertError(ctx, err, "secrets", "secret", s.ID, nameTaken)
		}
		return t.insertGrants(ctx, s)
	})
}

// insertGrants grants s to s.ProfileIDs. That they are the user's profiles
// is the service's rule, checked before; the schema holds it too (the
// grant's foreign key names the profile and the user), and its failure
// stays an internal error, as it only comes from a caller that skipped the
// service's check.
func (t *tx) insertGrants(ctx context.Context, s *vault.Secret) error {
	if len(s.ProfileIDs) == 0 {
		return nil
	}
	ids, err := json.Marshal(s.ProfileIDs)
	if err != nil {
		return fmt.Errorf("encode profile ids: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `
		INSERT INTO secret_grants (secret_id, profile_id, user_id, name)
		SELECT ?, j.value, ?, ? FROM json_each(?) j`, s.ID, t.userID, s.Name, string(ids))
	if err != nil {
		return convert(err, "insert grants of secret "+s.ID,
			conflictAs("profile_ids", "another secret already grants this name to one of these profiles"))
	}
	return nil
}

// UpdateSecret replaces a secret's row (all but its user and creation time)
// and, if grants, its grants. Returns ENOTFOUND if it does not exist or is
// another user's, and ECONFLICT as CreateSecret does.
func (t *tx) UpdateSecret(ctx context.Context, s *vault.Secret, grants bool) error {
	if err := t.checkOwner("secret", s.ID, s.UserID); err != nil {
		return err
	}
	return t.atomically(ctx, func() error {
		// Grants go first: with the old ones gone, a new name cannot
		// collide with a grant this very write removes.
		if grants {
			if _, err := t.tx.ExecContext(ctx, `DELETE FROM secret_grants WHERE secret_id = ? AND user_id = ?`,
				s.ID, t.userID); err != nil {
				return fmt.Errorf("delete grants of secret %s: %w", s.ID, err)
			}
		}
		res, err := t.tx.ExecContext(ctx, `
			UPDATE secrets SET name = ?, scope = ?, description = ?, version = ?, sealed_value = ?,
				sealed_key = ?, master_key_id = ?, updated_at = ?
			WHERE id = ? AND user_id = ?`,
			s.Name, string(s.Scope), s.Description, s.Version, s.SealedValue, s.SealedKey, s.MasterKeyID,
			micros(s.UpdatedAt), s.ID, t.userID)
		if err != nil {
			return convert(err, "update secret "+s.ID, uniqueAs("name", nameTaken))
		}
		if err := oneRow(res, "secret"); err != nil || !grants {
			return err
		}
		return t.insertGrants(ctx, s)
	})
}

// DeleteSecret deletes a secret and its grants. Returns ENOTFOUND if it
// does not exist or is another user's.
func (t *tx) DeleteSecret(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM secrets WHERE id = ? AND user_id = ?`, id, t.userID)
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", id, err)
	}
	return oneRow(res, "secret")
}

// SecretsForProfile returns, in one query, the sealed secrets of userID
// that the profile may receive: every ScopeAll secret and the ScopeAgents
// secrets that grant it, ordered by name then id. Returns ENOTFOUND if the
// profile does not exist or is not userID's.
func (db *DB) SecretsForProfile(ctx context.Context, userID, profileID string) ([]*vault.Secret, error) {
	// The profile row is the left side, so a profile of the user with no
	// secrets still answers one row (of NULLs), and zero rows means the
	// profile is not the user's.
	rows, err := db.read.QueryContext(ctx, `
		SELECT p.id, `+secretColumns+`
		FROM profiles p
		LEFT JOIN secrets s ON s.user_id = p.user_id AND (
			s.scope = 'all' OR EXISTS (
				SELECT 1 FROM secret_grants g WHERE g.secret_id = s.id AND g.profile_id = p.id))
		WHERE p.id = ? AND p.user_id = ?
		ORDER BY s.name, s.id`, profileID, userID)
	if err != nil {
		return nil, db.unavailable(db.read, fmt.Errorf("query secrets for profile: %w", err))
	}
	defer rows.Close()
	found := false
	var out []*vault.Secret
	for rows.Next() {
		found = true
		var pid string
		var ns nullSecret
		if err := rows.Scan(append([]any{&pid}, ns.dest()...)...); err != nil {
			return nil, fmt.Errorf("scan secret for profile: %w", err)
		}
		if !ns.id.Valid {
			continue
		}
		sec, err := ns.secret(userID)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read secrets for profile: %w", err)
	}
	if !found {
		return nil, notFound("profile")
	}
	return out, nil
}
