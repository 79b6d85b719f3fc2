package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/envvault/envvault/vault"
)

const profileColumns = `p.id, p.name, p.image, p.command, p.setup_commands, p.env, p.sandbox, p.required_secrets, p.on_secret_change, p.created_at, p.updated_at`

func (t *tx) queryProfiles(ctx context.Context, query string, args ...any) ([]*vault.Profile, error) {
	rows, err := t.tx.QueryContext(ctx, query, args...)
	list, err := collect(rows, err, func(rows *sql.Rows) (*vault.Profile, error) {
		p := &vault.Profile{UserID: t.userID}
		var command, setup, env, sandbox, required string
		var created, updated int64
		if err := rows.Scan(&p.ID, &p.Name, &p.Image, &command, &setup, &env, &sandbox, &required, &p.OnSecretChange, &created, &updated); err != nil {
			return nil, err
		}
		if err := errors.Join(
			json.Unmarshal([]byte(command), &p.Command),
			json.Unmarshal([]byte(setup), &p.SetupCommands),
			json.Unmarshal([]byte(env), &p.Env),
			json.Unmarshal([]byte(sandbox), &p.Sandbox),
			json.Unmarshal([]byte(required), &p.RequiredSecrets),
		); err != nil {
			return nil, fmt.Errorf("decode profile %s: %w", p.ID, err)
		}
		p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
		return p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	return list, nil
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
	found, err := collect(rows, err, scanOne[string])
	if err != nil {
		return nil, fmt.Errorf("read profile ids: %w", err)
	}
	return found, nil
}

// profileJSON encodes the JSON columns of a profile; a nil list or map is
// stored empty.
func profileJSON(p *vault.Profile) (command, setup, env, sandbox, required string, err error) {
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
	sandbox = enc(p.Sandbox)
	if p.RequiredSecrets == nil {
		required = "[]"
	} else {
		required = enc(p.RequiredSecrets)
	}
	if err != nil {
		return "", "", "", "", "", fmt.Errorf("encode profile %s: %w", p.ID, err)
	}
	return command, setup, env, sandbox, required, nil
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
	command, setup, env, sandbox, required, err := profileJSON(p)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `
		INSERT INTO profiles (id, user_id, name, image, command, setup_commands, env, sandbox, required_secrets, on_secret_change, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, t.userID, p.Name, p.Image, command, setup, env, sandbox, required, onSecretChange(p), micros(p.CreatedAt), micros(p.UpdatedAt))
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
	command, setup, env, sandbox, required, err := profileJSON(p)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, `
		UPDATE profiles SET name = ?, image = ?, command = ?, setup_commands = ?, env = ?, sandbox = ?, required_secrets = ?, on_secret_change = ?, updated_at = ?
		WHERE id = ? AND user_id = ?`,
		p.Name, p.Image, command, setup, env, sandbox, required, onSecretChange(p), micros(p.UpdatedAt), p.ID, t.userID)
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

// onSecretChange stores a profile's zero OnSecretChange as the default,
// keep, as nil lists are stored empty.
func onSecretChange(p *vault.Profile) string {
	if p.OnSecretChange == "" {
		return vault.OnSecretChangeKeep
	}
	return p.OnSecretChange
}
