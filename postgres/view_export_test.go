package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// StatementCount counts the rows of table in a one-statement view of
// userID, with no WHERE at all: row-level security alone filters.
func (db *DB) StatementCount(ctx context.Context, userID, table string) (int, error) {
	var n int
	err := db.ViewStatement(ctx, userID, func(vt vault.Tx) error {
		return vt.(*tx).tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n)
	})
	return n, err
}

// StatementExec runs sql as the statement of a one-statement view.
func (db *DB) StatementExec(ctx context.Context, userID, sql string) error {
	return db.ViewStatement(ctx, userID, func(vt vault.Tx) error {
		_, err := vt.(*tx).tx.Exec(ctx, sql)
		return err
	})
}

// ForProfileQuery is the query of SecretsForProfile ($1 the profile, $2
// the user), and NoSeqScan the statement that precedes it.
const (
	ForProfileQuery = forProfile
	NoSeqScan       = noSeqScan
)
