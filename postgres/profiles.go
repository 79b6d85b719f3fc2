package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

const profileCols = `p.id, p.user_id, p.name, p.image, p.command, p.setup_commands, p.env, p.sandbox, p.required_secrets, p.on_secret_change, p.created_at, p.updated_at`

func scanProfile(row pgx.Row) (*vault.Profile, error) {
	var p vault.Profile
	err := row.Scan(&p.ID, &p.UserID, &p.Name, &p.Image, &p.Command, &p.SetupCommands, &p.Env, &p.Sandbox, &p.RequiredSecrets, &p.OnSecretChange, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	// The columns are NOT NULL JSON arrays and objects; these keep a
	// profile's lists and map non-nil, as the service makes them.
	if p.Command == nil {
		p.Command = []string{}
	}
	if p.SetupCommands == nil {
		p.SetupCommands = []string{}
	}
	if p.Env == nil {
		p.Env = map[string]string{}
	}
	if p.RequiredSecrets == nil {
		p.RequiredSecrets = []vault.RequiredSecret{}
	}
	return &p, nil
}

// Profile returns a profile by id. Returns ENOTFOUND if it does not exist.
func (t *tx) Profile(ctx context.Context, id string) (*vault.Profile, error) {
	p, err := scanProfile(t.tx.QueryRow(ctx, `SELECT `+profileCols+` FROM profiles p WHERE p.id = $1 AND p.user_id = $2`, id, t.userID))
	if err != nil {
		return nil, fmt.Errorf("read profile %s: %w", id, convertNotFound(err, "profile"))
	}
	return p, nil
}

// Profiles returns up to f.Limit profiles ordered by name then id, after
// f.After, whose names contain f.Query (case-insensitively).
func (t *tx) Profiles(ctx context.Context, f vault.ListFilter) ([]*vault.Profile, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	where, args := t.listWhere("p", f)
	rows, err := t.tx.Query(ctx, `SELECT `+profileCols+` FROM profiles p WHERE `+where+
		` ORDER BY p.name, p.id LIMIT `+strconv.Itoa(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", convert(err))
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*vault.Profile, error) { return scanProfile(row) })
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", convert(err))
	}
	return list, nil
}

// ExistingProfileIDs returns those of ids that are the user's profiles,
// sorted.
func (t *tx) ExistingProfileIDs(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT id FROM profiles WHERE user_id = $1 AND id = ANY($2) ORDER BY id`, t.userID, ids)
	if err != nil {
		return nil, fmt.Errorf("read profile ids: %w", convert(err))
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read profile ids: %w", convert(err))
	}
	return found, nil
}

// CreateProfile inserts a profile. Returns ECONFLICT if the user has a
// profile of the same name.
func (t *tx) CreateProfile(ctx context.Context, p *vault.Profile) error {
	if err := t.checkOwner("profile", p.ID, p.UserID); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO profiles (id, user_id, name, image, command, setup_commands, env, sandbox, required_secrets, on_secret_change, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		p.ID, t.userID, p.Name, p.Image, jsonList(p.Command), jsonList(p.SetupCommands), jsonMap(p.Env), p.Sandbox, requiredList(p.RequiredSecrets), onSecretChange(p), p.CreatedAt, p.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create profile %s: %w", p.ID, convert(err))
	}
	return nil
}

// UpdateProfile replaces a profile. Returns ENOTFOUND if it does not exist,
// ECONFLICT if the user has another profile of the same name.
func (t *tx) UpdateProfile(ctx context.Context, p *vault.Profile) error {
	if p.UserID != t.userID {
		return vault.Errorf(vault.ENOTFOUND, "profile not found")
	}
	tag, err := t.tx.Exec(ctx, `UPDATE profiles SET name = $3, image = $4, command = $5, setup_commands = $6, env = $7, sandbox = $8, required_secrets = $9, on_secret_change = $10, updated_at = $11
		WHERE id = $1 AND user_id = $2`,
		p.ID, t.userID, p.Name, p.Image, jsonList(p.Command), jsonList(p.SetupCommands), jsonMap(p.Env), p.Sandbox, requiredList(p.RequiredSecrets), onSecretChange(p), p.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update profile %s: %w", p.ID, convert(err))
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "profile not found")
	}
	return nil
}

// requiredList stores a nil list of required names as [], not null.
func requiredList(l []vault.RequiredSecret) []vault.RequiredSecret {
	if l == nil {
		return []vault.RequiredSecret{}
	}
	return l
}

// DeleteProfile deletes a profile and, by cascade, the grants naming it; a
// secret whose last grant goes grants nobody. Returns ENOTFOUND if it does
// not exist.
func (t *tx) DeleteProfile(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM profiles WHERE id = $1 AND user_id = $2`, id, t.userID)
	if err != nil {
		return fmt.Errorf("delete profile %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return vault.Errorf(vault.ENOTFOUND, "profile not found")
	}
	return nil
}

// onSecretChange stores a profile's zero OnSecretChange as the default,
// keep, as nil lists are stored empty.
func onSecretChange(p *vault.Profile) string {
	if p.OnSecretChange == "" {
		return vault.OnSecretChangeKeep
	}
	return p.OnSecretChange
}
