package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/envvault/envvault/vault"
)

// secretCols are the columns scanSecret reads, for a query over secrets s.
// The grants of an `agents` secret come back sorted by id (the "C"
// collation of the column is byte order, as Go sorts); an `all` secret has
// none, and skips the lookup.
const secretCols = `s.id, s.user_id, s.name, s.scope, s.description, s.version,
	s.sealed_value, s.sealed_key, s.master_key_id, s.created_at, s.updated_at, s.kind,
	CASE WHEN s.scope = 'agents' THEN
		ARRAY(SELECT g.profile_id FROM secret_grants g WHERE g.secret_id = s.id ORDER BY g.profile_id)
	END`

// scanSecret reads the secretCols of row, and then into more, if given,
// the columns that follow them.
func scanSecret(row pgx.Row, more ...any) (*vault.Secret, error) {
	var s vault.Secret
	var scope, kind string
	err := row.Scan(append([]any{&s.ID, &s.UserID, &s.Name, &scope, &s.Description, &s.Version,
		&s.SealedValue, &s.SealedKey, &s.MasterKeyID, &s.CreatedAt, &s.UpdatedAt, &kind, &s.ProfileIDs}, more...)...)
	if err != nil {
		return nil, err
	}
	s.Scope, s.Kind = vault.Scope(scope), vault.Kind(kind)
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

// CreateSecret inserts a secret with its grants, in one round trip.
// Returns ECONFLICT if a uniqueness rule of the database is broken.
func (t *tx) CreateSecret(ctx context.Context, s *vault.Secret) error {
	if err := t.checkOwner("secret", s.ID, s.UserID); err != nil {
		return err
	}
	return t.now(ctx, append([]stmt{{`INSERT INTO secrets (id, user_id, name, scope, description, version,
			sealed_value, sealed_key, master_key_id, created_at, updated_at, kind)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		[]any{s.ID, t.userID, s.Name, string(s.Scope), s.Description, s.Version,
			s.SealedValue, s.SealedKey, s.MasterKeyID, s.CreatedAt, s.UpdatedAt, string(s.Kind.OrValue())},
		failed("create secret %s", s.ID)}}, t.grants(s, "create")...)...)
}

// failed is the answer check of a statement whose command tag says
// nothing: its error, converted, in the context format and args give.
func failed(format string, args ...any) func(pgconn.CommandTag, error) error {
	return func(_ pgconn.CommandTag, err error) error {
		if err != nil {
			return fmt.Errorf(format+": %w", append(args, convert(err))...)
		}
		return nil
	}
}

// found is failed, and ENOTFOUND (kind not found) if the statement
// touched no row.
func found(kind, format string, args ...any) func(pgconn.CommandTag, error) error {
	fail := failed(format, args...)
	return func(tag pgconn.CommandTag, err error) error {
		if isNoRow(err) {
			return vault.Errorf(vault.ENOTFOUND, "%s not found", kind)
		}
		if err != nil {
			return fail(tag, err)
		}
		if tag.RowsAffected() == 0 {
			return vault.Errorf(vault.ENOTFOUND, "%s not found", kind)
		}
		return nil
	}
}

// grants is the statement that grants s to s.ProfileIDs, if any. That
// they are the user's profiles is the service's rule, checked before; the
// schema's foreign key only knows that a profile exists. So the grant's
// user is read from the profile, joined on the transaction's user: a
// profile that is not the user's gives a NULL user, which the column's NOT
// NULL (and, for the service's role, the row-level security policy)
// refuses, and the statement fails whole. The failure stays an internal
// error, as it only comes from a caller that skipped the service's check.
func (t *tx) grants(s *vault.Secret, op string) []stmt {
	if len(s.ProfileIDs) == 0 {
		return nil
	}
	// The join on the user's secret grants nothing for a secret that is
	// not theirs: UpdateSecret sends this with its UPDATE, before it knows
	// whether that found the secret.
	return []stmt{{`INSERT INTO secret_grants (secret_id, profile_id, user_id, name)
		SELECT s.id, g.id, p.user_id, $2 FROM unnest($4::text[]) AS g(id)
		JOIN secrets s ON s.id = $1 AND s.user_id = $3
		LEFT JOIN profiles p ON p.id = g.id AND p.user_id = $3`,
		[]any{s.ID, s.Name, t.userID, s.ProfileIDs},
		failed("%s secret %s: grant profiles", op, s.ID)}}
}

// UpdateSecret replaces a secret's row and, if grants, its grants, in one
// round trip. Returns ENOTFOUND if it does not exist, ECONFLICT if a
// uniqueness rule is broken. Without grants, in Update's pipeline, the
// row goes with the next statement (the audit event and the commit):
// only a rename or a new grant can break a uniqueness rule, and a secret
// read under its lock (vault's lockSecret) is there.
func (t *tx) UpdateSecret(ctx context.Context, s *vault.Secret, grants bool) error {
	if s.UserID != t.userID {
		return vault.Errorf(vault.ENOTFOUND, "secret not found")
	}
	list := []stmt{{`UPDATE secrets SET name = $3, scope = $4, description = $5, version = $6,
			sealed_value = $7, sealed_key = $8, master_key_id = $9, updated_at = $10
		WHERE id = $1 AND user_id = $2`,
		[]any{s.ID, t.userID, s.Name, string(s.Scope), s.Description, s.Version,
			s.SealedValue, s.SealedKey, s.MasterKeyID, s.UpdatedAt},
		found("secret", "update secret %s", s.ID)}}
	if !grants {
		return t.later(ctx, expectRow(list[0].sql), list[0].args, list[0].done)
	}
	// The grants are replaced whole: they carry the name, which may have
	// changed, and the old set must be gone before the unique (profile_id,
	// name) index checks the new one.
	list = append(list, stmt{`DELETE FROM secret_grants WHERE secret_id = $1 AND user_id = $2`, []any{s.ID, t.userID},
		failed("update secret %s: revoke grants", s.ID)})
	return t.now(ctx, append(list, t.grants(s, "update")...)...)
}

// DeleteSecret deletes a secret and its grants. Returns ENOTFOUND if it
// does not exist.
func (t *tx) DeleteSecret(ctx context.Context, id string) error {
	return t.now(ctx, stmt{`DELETE FROM secrets WHERE id = $1 AND user_id = $2`, []any{id, t.userID},
		found("secret", "delete secret %s", id)})
}

// forProfile is the one query behind SecretsForProfile, reading only what
// a release needs. The profile is the left side, so an unknown profile, or
// another user's, gives no row at all (ENOTFOUND), while a profile that
// receives nothing gives one row of NULLs.
//
// Its cost is bounded by the user's own rows whatever the size of the
// tables, and linear in them: the secrets come from the secrets_user_name
// index; the grant test is uncorrelated (it names the profile by
// parameter), so PostgreSQL reads this profile's grants once, from the
// secret_grants_profile_name_key index, into a hashed set, rather than once
// per secret; an `agents` secret's other grants are not read at all. The
// statement before it turns sequential scans off for the transaction, so
// that the plan is the same before the tables are first analysed (right
// after a bulk import, when the planner knows their size but not that one
// user holds a small part of them) as after.
const forProfile = `SELECT s.id, s.name, s.scope = 'agents', s.version, s.sealed_value, s.sealed_key, s.master_key_id, s.kind
	FROM profiles p
	LEFT JOIN secrets s ON s.user_id = $2
		AND (s.scope = 'all' OR s.id IN (SELECT g.secret_id FROM secret_grants g WHERE g.profile_id = $1))
	WHERE p.id = $1 AND p.user_id = $2`

// noSeqScan turns sequential scans off until the end of the transaction
// (see forProfile).
const noSeqScan = `SELECT set_config('enable_seqscan', 'off', true)`

// SecretsForProfile returns, in one round trip, the sealed secrets of
// userID that the profile may receive: every ScopeAll secret and the
// ScopeAgents secrets that grant it. It reads only what a release needs:
// ID, UserID, Name, Scope, Version, SealedValue, SealedKey and MasterKeyID;
// the ProfileIDs of a ScopeAgents secret hold this profile alone (one
// slice shared by them: read-only), and Description and the times are left
// zero. Returns ENOTFOUND if the profile does not exist or is not userID's.
func (db *DB) SecretsForProfile(ctx context.Context, userID, profileID string) ([]*vault.Secret, error) {
	var list []*vault.Secret
	err := db.userBatch(ctx, userID, func(b *pgx.Batch) {
		b.Queue(noSeqScan).Exec(func(pgconn.CommandTag) error { return nil })
		b.Queue(forProfile, profileID, userID).Query(func(rows pgx.Rows) (err error) {
			list, err = scanForProfile(rows, userID, profileID)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read secrets for profile %s: %w", profileID, err)
	}
	return list, nil
}

// scanForProfile reads the rows of forProfile with few allocations: the
// sealed bytes of all rows share large blocks, the id and name of a row
// are one string, the master key id is shared by the rows sealed under the
// same key, and the secrets are allocated in blocks.
func scanForProfile(rows pgx.Rows, userID, profileID string) ([]*vault.Secret, error) {
	var (
		r       = newReleaseRow()
		list    []*vault.Secret
		block   []vault.Secret
		profile bool
		granted = []string{profileID}
	)
	dest := []any{&r.id, &r.name, &r.agents, &r.version, &r.value, &r.key, &r.keyID, &r.kind}
	for rows.Next() {
		profile = true
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if r.id.b == nil { // the profile receives no secret
			continue
		}
		if len(block) == cap(block) {
			block = make([]vault.Secret, 0, min(max(2*cap(block), 16), 1024))
		}
		block = append(block, vault.Secret{UserID: userID, Scope: vault.ScopeAll, Version: int(r.version.Int32),
			SealedValue: r.value.b, SealedKey: r.key.b, MasterKeyID: r.keyID.s, Kind: vault.Kind(r.kind.s)})
		s := &block[len(block)-1]
		idName := string(append(r.id.b, r.name.b...))
		s.ID, s.Name = idName[:len(r.id.b)], idName[len(r.id.b):]
		if r.agents.Bool {
			s.Scope, s.ProfileIDs = vault.ScopeAgents, granted
		}
		list = append(list, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !profile {
		return nil, vault.Errorf(vault.ENOTFOUND, "profile not found")
	}
	return list, nil
}

// releaseRow holds the scan targets of one row of forProfile, reused for
// every row.
type releaseRow struct {
	id, name   scratch
	agents     pgtype.Bool
	version    pgtype.Int4
	value, key arenaBytes
	keyID      internedText
	kind       internedText
}

func newReleaseRow() *releaseRow {
	a := &arena{}
	return &releaseRow{value: arenaBytes{a: a}, key: arenaBytes{a: a}}
}

// scratch keeps a copy of a column in a buffer reused for every row; b is
// nil for a NULL.
type scratch struct{ b, buf []byte }

// ScanBytes copies v, which pgx reuses after the call.
func (s *scratch) ScanBytes(v []byte) error {
	if v == nil {
		s.b = nil
	} else {
		s.buf = append(s.buf[:0], v...)
		s.b = s.buf
	}
	return nil
}

// arenaBytes copies a column into its arena.
type arenaBytes struct {
	a *arena
	b []byte
}

// ScanBytes copies v; a NULL gives nil.
func (x *arenaBytes) ScanBytes(v []byte) error {
	x.b = x.a.copy(v)
	return nil
}

// arena hands out copies of bytes from blocks it allocates as it fills
// them, doubling from 4 KiB to 64 KiB: the sealed bytes of many rows cost
// a few allocations, not one per column and row. Each copy is capped at its
// length, so appending to one never writes into another.
type arena struct{ block []byte }

func (a *arena) copy(v []byte) []byte {
	if v == nil {
		return nil
	}
	if len(v) > cap(a.block)-len(a.block) {
		a.block = make([]byte, 0, max(min(2*cap(a.block), 64<<10), 4<<10, len(v)))
	}
	n := len(a.block)
	a.block = append(a.block, v...)
	return a.block[n:len(a.block):len(a.block)]
}

// internedText keeps the string of a column, allocating a new one only
// when it differs from the row before: the master key id is the same for
// almost every row.
type internedText struct{ s string }

// ScanBytes sets s to v; a NULL gives "".
func (t *internedText) ScanBytes(v []byte) error {
	if string(v) != t.s {
		t.s = string(v)
	}
	return nil
}
