package sqlite

import (
	"database/sql"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/envvault/envvault/vault"
)

// errUnavailable is what a store method returns, wrapping the driver's
// error, when the database file cannot serve the request now: the API
// answers it 503 with Retry-After and the dashboard a page saying so.
var errUnavailable = vault.Errorf(vault.EUNAVAILABLE, "the database cannot be reached now: retry later")

// unavailable turns err, which a statement on pool returned, into
// EUNAVAILABLE (still wrapping err, for the logs) if it says the file
// cannot serve requests now for a reason outside the request and outside
// this code, that an operator or time fixes without losing data; any other
// error is returned unchanged. By result code only, never by message text:
//
//   - SQLITE_BUSY (every extended code): another connection, of this
//     process or another, held a lock for longer than busyTimeout.
//   - SQLITE_FULL: the disk (or its quota) is full; space freed, writes
//     work again.
//   - SQLITE_CANTOPEN: the file or its directory cannot be opened (gone,
//     or its permissions changed) when the pool opens a connection.
//   - SQLITE_IOERR (every extended code): the operating system failed a
//     read, write or sync: the volume is failing or was unmounted.
//   - SQLITE_READONLY with an extended code (the file was moved or
//     deleted under the process, its lock or WAL cannot be taken), and
//     plain SQLITE_READONLY on the write pool (the file or its directory
//     is no longer writable). Plain SQLITE_READONLY on the read pool is a
//     write attempted in a read-only transaction: this code's mistake.
//
// Everything else is an internal error (500): SQLITE_CORRUPT and
// SQLITE_NOTADB (the data itself is broken; retrying cannot help and a 503
// would hide it), SQLITE_LOCKED (a conflict inside one connection: a bug),
// SQLITE_NOMEM, SQL errors and constraints (converted in errors.go).
//
// Nothing is half-written when it fires: SQLite rolls the transaction back
// (or, if the commit's last sync failed, recovery discards the WAL frames
// whose checksum does not match), so a write either fully happened, with
// its audit event, or not at all.
func (db *DB) unavailable(pool *sql.DB, err error) error {
	if err == nil {
		return nil
	}
	c := code(err)
	if c == 0 {
		return err
	}
	switch c & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR:
	case sqlite3.SQLITE_READONLY:
		if c == sqlite3.SQLITE_READONLY && pool != db.write {
			return err
		}
	default:
		return err
	}
	return fmt.Errorf("%w: %w", errUnavailable, err)
}
