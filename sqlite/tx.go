package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/envvault/envvault/vault"
)

// tx is a vault.Tx: every statement names the transaction's user, so
// another user's rows are invisible to it. It is not safe for concurrent
// use, as *sql.Tx is not.
type tx struct {
	tx     *sql.Tx
	userID string
}

var _ vault.Tx = (*tx)(nil)

// secretColumns selects a secret row as nullSecret scans it, with its
// grants as a JSON array of profile ids.
const secretColumns = `s.id, s.name, s.scope, s.description, s.version, s.sealed_value, s.sealed_key,
	s.master_key_id, s.created_at, s.updated_at,
	(SELECT json_group_array(g.profile_id) FROM secret_grants g WHERE g.secret_id = s.id)`

// nullSecret scans secretColumns; every column may be NULL, as on the
// right side of a LEFT JOIN.
type nullSecret struct {
	id, name, scope, description, masterKeyID sql.NullString
	version, created, updated                 sql.NullInt64
	sealedValue, sealedKey                    []byte
	grants                                    sql.NullString
}

func (n *nullSecret) dest() []any {
	return []any{&n.id, &n.name, &n.scope, &n.description, &n.version, &n.sealedValue, &n.sealedKey,
		&n.masterKeyID, &n.created, &n.updated, &n.grants}
}

func (n *nullSecret) secret(userID string) (*vault.Secret, error) {
	s := &vault.Secret{
		ID: n.id.String, UserID: userID, Name: n.name.String, Scope: vault.Scope(n.scope.String),
		Description: n.description.String, Version: int(n.version.Int64),
		SealedValue: n.sealedValue, SealedKey: n.sealedKey, MasterKeyID: n.masterKeyID.String,
		CreatedAt: fromMicros(n.created.Int64), UpdatedAt: fromMicros(n.updated.Int64),
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
	if err != nil {
		return nil, fmt.Errorf("query secrets: %w", err)
	}
	defer rows.Close()
	var out []*vault.Secret
	for rows.Next() {
		var ns nullSecret
		if err := rows.Scan(ns.dest()...); err != nil {
			return nil, fmt.Errorf("scan secret: %w", err)
		}
		s, err := ns.secret(t.userID)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	return out, nil
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

// listWhere returns the WHERE clause and arguments of a list page: the
// user's rows whose names contain f.Query, case-insensitively, after
// f.After in (name, id) order.
func (t *tx) listWhere(alias string, f vault.ListFilter) (string, []any) {
	where := []string{alias + ".user_id = ?"}
	args := []any{t.userID}
	if f.Query != "" {
		// instr, not LIKE: no character of the query is a wildcard.
		// upper() folds ASCII letters only.
		where = append(where, "instr(upper("+alias+".name), upper(?)) > 0")
		args = append(args, f.Query)
	}
	if f.After != nil {
		where = append(where, "("+alias+".name, "+alias+".id) > (?, ?)")
		args = append(args, f.After.Key, f.After.ID)
	}
	return strings.Join(where, " AND "), args
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

// atomically runs fn inside a savepoint, so a method of several statements
// either writes all of them or, when one fails, none: the transaction stays
// usable and unchanged.
func (t *tx) atomically(ctx context.Context, fn func() error) error {
	if _, err := t.tx.ExecContext(ctx, `SAVEPOINT vault_tx_method`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(); err != nil {
		// Undo even if ctx has ended: the transaction may still commit.
		undo := context.WithoutCancel(ctx)
		if _, rerr := t.tx.ExecContext(undo, `ROLLBACK TO vault_tx_method`); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rerr))
		}
		if _, rerr := t.tx.ExecContext(undo, `RELEASE vault_tx_method`); rerr != nil {
			return errors.Join(err, fmt.Errorf("release savepoint: %w", rerr))
		}
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `RELEASE vault_tx_method`); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// insertError converts the error of an insert into table (secrets or
// profiles) of a row with the given id. A taken id also breaks every unique
// index that holds the id, and SQLite may report any one of them, so a
// unique violation is told apart by asking whether the id exists.
func (t *tx) insertError(ctx context.Context, err error, table, kind, id, nameMsg string) error {
	op := "insert into " + table + " " + id
	if !isUnique(err) && !isPrimaryKey(err) {
		return convert(err, op, foreignKeyAs(notFound("user")))
	}
	var n int
	if qerr := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE id = ?`, id).Scan(&n); qerr != nil {
		return errors.Join(convert(err, op), fmt.Errorf("look up id: %w", qerr))
	}
	if n > 0 {
		return convert(err, op, conflictAs("id", "a "+kind+" of this id already exists"))
	}
	return convert(err, op, conflictAs("name", nameMsg))
}

func (t *tx) checkOwner(kind, id, userID string) error {
	if userID != t.userID {
		return fmt.Errorf("%s %s is of user %s, not of the transaction's user %s", kind, id, userID, t.userID)
	}
	return nil
}

const nameTaken = "another secret already holds this name for all profiles"

// CreateSecret inserts a secret with its grants. Returns ECONFLICT if the
// id is taken, another `all` secret holds the name, or a profile is already
// granted the name; EINVALID if a profile id is not one of the user's.
func (t *tx) CreateSecret(ctx context.Context, s *vault.Secret) error {
	if err := t.checkOwner("secret", s.ID, s.UserID); err != nil {
		return err
	}
	return t.atomically(ctx, func() error {
		_, err := t.tx.ExecContext(ctx, `
			INSERT INTO secrets (id, user_id, name, scope, description, version, sealed_value, sealed_key,
				master_key_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, t.userID, s.Name, string(s.Scope), s.Description, s.Version, s.SealedValue, s.SealedKey,
			s.MasterKeyID, micros(s.CreatedAt), micros(s.UpdatedAt))
		if err != nil {
			return t.insertError(ctx, err, "secrets", "secret", s.ID, nameTaken)
		}
		return t.insertGrants(ctx, s)
	})
}

func (t *tx) insertGrants(ctx context.Context, s *vault.Secret) error {
	if len(s.ProfileIDs) == 0 {
		return nil
	}
	// A repeated id would break the primary key and the name key at once,
	// and SQLite may report either; so it is refused here, by name.
	sorted := slices.Sorted(slices.Values(s.ProfileIDs))
	if len(slices.Compact(sorted)) != len(s.ProfileIDs) {
		return vault.Invalid("profile_ids", "must not contain an id twice")
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
			conflictAs("profile_ids", "another secret already grants this name to one of these profiles"),
			foreignKeyAs(vault.Invalid("profile_ids", "holds an id that is not one of your profiles")))
	}
	return nil
}

// UpdateSecret replaces a secret's row (all but its user and creation time)
// and its grants. Returns ENOTFOUND if it does not exist or is another
// user's, and ECONFLICT or EINVALID as CreateSecret does.
func (t *tx) UpdateSecret(ctx context.Context, s *vault.Secret) error {
	if err := t.checkOwner("secret", s.ID, s.UserID); err != nil {
		return err
	}
	return t.atomically(ctx, func() error {
		// Grants go first: with the old ones gone, a new name cannot
		// collide with a grant this very write removes.
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM secret_grants WHERE secret_id = ? AND user_id = ?`,
			s.ID, t.userID); err != nil {
			return fmt.Errorf("delete grants of secret %s: %w", s.ID, err)
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
		if err := oneRow(res, "secret"); err != nil {
			return err
		}
		return t.insertGrants(ctx, s)
	})
}

// oneRow returns ENOTFOUND if the statement touched no row.
func oneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
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

const profileColumns = `p.id, p.name, p.image, p.command, p.setup_commands, p.env, p.created_at, p.updated_at`

func (t *tx) queryProfiles(ctx context.Context, query string, args ...any) ([]*vault.Profile, error) {
	rows, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query profiles: %w", err)
	}
	defer rows.Close()
	var out []*vault.Profile
	for rows.Next() {
		p := &vault.Profile{UserID: t.userID}
		var command, setup, env string
		var created, updated int64
		if err := rows.Scan(&p.ID, &p.Name, &p.Image, &command, &setup, &env, &created, &updated); err != nil {
			return nil, fmt.Errorf("scan profile: %w", err)
		}
		if err := errors.Join(
			json.Unmarshal([]byte(command), &p.Command),
			json.Unmarshal([]byte(setup), &p.SetupCommands),
			json.Unmarshal([]byte(env), &p.Env),
		); err != nil {
			return nil, fmt.Errorf("decode profile %s: %w", p.ID, err)
		}
		p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	return out, nil
}

// Profile returns a profile by id. Returns ENOTFOUND if it does not exist
// or is another user's.
func (t *tx) Profile(ctx context.Context, id string) (*vault.Profile, error) {
	list, err := t.queryProfiles(ctx, `SELECT `+profileColumns+` FROM profiles p WHERE p.id = ? AND p.user_id = ?`, id, t.userID)
	if err != nil {
		return nil, fmt.Errorf("read profile %s: %w", id, err)
	}
	if len(list) == 0 {
		return nil, notFound("profile")
	}
	return list[0], nil
}

// Profiles returns up to f.Limit of the user's profiles ordered by name
// then id, after f.After, whose names contain f.Query (case-insensitively
// for ASCII letters).
func (t *tx) Profiles(ctx context.Context, f vault.ListFilter) ([]*vault.Profile, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	where, args := t.listWhere("p", f)
	list, err := t.queryProfiles(ctx, `SELECT `+profileColumns+` FROM profiles p WHERE `+where+
		` ORDER BY p.name, p.id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	return list, nil
}

// ExistingProfileIDs returns, sorted, those of ids that are the user's
// profiles.
func (t *tx) ExistingProfileIDs(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("encode profile ids: %w", err)
	}
	rows, err := t.tx.QueryContext(ctx, `
		SELECT id FROM profiles
		WHERE user_id = ? AND id IN (SELECT value FROM json_each(?))
		ORDER BY id`, t.userID, string(raw))
	if err != nil {
		return nil, fmt.Errorf("query profile ids: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan profile id: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read profile ids: %w", err)
	}
	return out, nil
}

// profileJSON encodes the JSON columns of a profile; a nil list or map is
// stored empty.
func profileJSON(p *vault.Profile) (command, setup, env string, err error) {
	enc := func(v any) string {
		b, e := json.Marshal(v)
		err = errors.Join(err, e)
		return string(b)
	}
	command = enc(nonNil(p.Command))
	setup = enc(nonNil(p.SetupCommands))
	if p.Env == nil {
		env = "{}"
	} else {
		env = enc(p.Env)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("encode profile %s: %w", p.ID, err)
	}
	return command, setup, env, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const profileNameTaken = "you already have a profile of this name"

// CreateProfile inserts a profile. Returns ECONFLICT if the user has a
// profile of the same name or the id is taken.
func (t *tx) CreateProfile(ctx context.Context, p *vault.Profile) error {
	if err := t.checkOwner("profile", p.ID, p.UserID); err != nil {
		return err
	}
	command, setup, env, err := profileJSON(p)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `
		INSERT INTO profiles (id, user_id, name, image, command, setup_commands, env, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, t.userID, p.Name, p.Image, command, setup, env, micros(p.CreatedAt), micros(p.UpdatedAt))
	if err != nil {
		return t.insertError(ctx, err, "profiles", "profile", p.ID, profileNameTaken)
	}
	return nil
}

// UpdateProfile replaces a profile (all but its user and creation time).
// Returns ENOTFOUND if it does not exist or is another user's, ECONFLICT if
// the user has another profile of the same name.
func (t *tx) UpdateProfile(ctx context.Context, p *vault.Profile) error {
	if err := t.checkOwner("profile", p.ID, p.UserID); err != nil {
		return err
	}
	command, setup, env, err := profileJSON(p)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, `
		UPDATE profiles SET name = ?, image = ?, command = ?, setup_commands = ?, env = ?, updated_at = ?
		WHERE id = ? AND user_id = ?`,
		p.Name, p.Image, command, setup, env, micros(p.UpdatedAt), p.ID, t.userID)
	if err != nil {
		return convert(err, "update profile "+p.ID, uniqueAs("name", profileNameTaken))
	}
	return oneRow(res, "profile")
}

// DeleteProfile deletes a profile and the grants naming it; a secret whose
// last grant goes keeps its scope and grants nobody. Returns ENOTFOUND if
// it does not exist or is another user's.
func (t *tx) DeleteProfile(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM profiles WHERE id = ? AND user_id = ?`, id, t.userID)
	if err != nil {
		return fmt.Errorf("delete profile %s: %w", id, err)
	}
	return oneRow(res, "profile")
}
