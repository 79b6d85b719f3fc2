package sqlite

import (
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/envvault/envvault/vault"
)

// A mapping turns one kind of driver error into a vault error. The driver
// error is recognized by its extended result code, never by its text.
type mapping struct {
	match func(err error) bool
	to    *vault.Error
}

// convert returns err as the vault error of the first mapping that matches
// it, wrapped with op, or err itself wrapped with op if none does.
func convert(err error, op string, ms ...mapping) error {
	for _, m := range ms {
		if m.match(err) {
			e := *m.to // a fresh copy: callers may hold on to it
			return fmt.Errorf("%s: %w", op, &e)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func code(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isUnique(err error) bool     { return code(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE }
func isPrimaryKey(err error) bool { return code(err) == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY }
func isForeignKey(err error) bool { return code(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY }
func isNoRows(err error) bool     { return errors.Is(err, sql.ErrNoRows) }

// conflictAs maps a unique or primary key violation to ECONFLICT.
func conflictAs(field, msg string) mapping {
	return mapping{func(err error) bool { return isUnique(err) || isPrimaryKey(err) }, conflict(field, msg)}
}

// uniqueAs maps a UNIQUE violation (not a primary key one) to ECONFLICT.
func uniqueAs(field, msg string) mapping { return mapping{isUnique, conflict(field, msg)} }

// foreignKeyAs maps a foreign key violation to e.
func foreignKeyAs(e *vault.Error) mapping { return mapping{isForeignKey, e} }

// noRowsAs maps sql.ErrNoRows to e.
func noRowsAs(e *vault.Error) mapping { return mapping{isNoRows, e} }

// conflict returns an ECONFLICT error about field. Its message names no
// value: the caller's write is what the client already knows.
func conflict(field, msg string) *vault.Error {
	return &vault.Error{Code: vault.ECONFLICT, Field: field, Message: field + ": " + msg}
}

// notFound is the one answer for an object that does not exist and for one
// of another user: the two must not be told apart.
func notFound(what string) *vault.Error {
	return &vault.Error{Code: vault.ENOTFOUND, Message: what + " not found"}
}
