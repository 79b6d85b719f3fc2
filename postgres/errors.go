package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/vault"
)

// Unique constraints and indexes of the schema whose violation is a rule
// the user can break; see migrations/postgres.
const (
	secretsAllNameKey    = "secrets_all_name_key"
	grantsProfileNameKey = "secret_grants_profile_name_key"
	profilesUserNameKey  = "profiles_user_name_key"
	tokensUserFkey       = "tokens_user_id_fkey"
	// Writes of one user run at once (db.go): a write can meet a user or
	// a profile that another one deleted after it read them.
	profilesUserFkey  = "profiles_user_id_fkey"
	secretsUserFkey   = "secrets_user_id_fkey"
	grantsProfileFkey = "secret_grants_profile_id_fkey"
	// A session opened with a token revoked meanwhile (sessions.go).
	sessionsTokenFkey = "sessions_token_id_fkey"
	sessionsUserFkey  = "sessions_user_id_fkey"
)

// SQLSTATEs the store turns into vault errors.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	charNotInRepertoire = "22021" // invalid UTF-8 in text
	untranslatableChar  = "22P05" // e.g. \u0000 in jsonb
	noDataFound         = "P0002" // envvault_expect_row: no row touched (expectRow)
)

// convert turns a driver error the user can cause into a vault error, by
// SQLSTATE and constraint name only (never by message text), and returns
// any other error unchanged. A vault error's message is for the client: it
// names the field and the rule, never a value of the row (PostgreSQL's
// Detail, which quotes the row, is never used).
// isNoRow reports whether err is envvault_expect_row's failure: the
// statement expectRow wrapped touched no row.
func isNoRow(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == noDataFound
}

func convert(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case uniqueViolation:
		switch pe.ConstraintName {
		case secretsAllNameKey:
			return &vault.Error{Code: vault.ECONFLICT, Field: "name",
				Message: "name: another secret of this name is already given to all profiles"}
		case grantsProfileNameKey:
			return &vault.Error{Code: vault.ECONFLICT, Field: "profile_ids",
				Message: "profile_ids: another secret of this name is already granted to one of these profiles"}
		case profilesUserNameKey:
			return &vault.Error{Code: vault.ECONFLICT, Field: "name",
				Message: "name: you already have a profile of this name"}
		default:
			// A primary key: a reused id.
			return vault.Errorf(vault.ECONFLICT, "the object already exists")
		}
	case foreignKeyViolation:
		switch pe.ConstraintName {
		case tokensUserFkey, profilesUserFkey, secretsUserFkey, sessionsUserFkey:
			return vault.Errorf(vault.ENOTFOUND, "user not found")
		case sessionsTokenFkey:
			return vault.Errorf(vault.ENOTFOUND, "token not found")
		case grantsProfileFkey:
			return &vault.Error{Code: vault.EINVALID, Field: "profile_ids",
				Message: "profile_ids: one of these profiles is not one of your profiles (it was deleted)"}
		}
	case charNotInRepertoire, untranslatableChar:
		return vault.Errorf(vault.EINVALID, "text must be valid UTF-8 without NUL characters")
	}
	return err
}

// convertNotFound is convert that also turns "no rows" into ENOTFOUND
// about what.
func convertNotFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.Errorf(vault.ENOTFOUND, "%s not found", what)
	}
	return convert(err)
}

// insufficientPrivilege is the SQLSTATE of a command the role may not run.
const insufficientPrivilege = "42501"
