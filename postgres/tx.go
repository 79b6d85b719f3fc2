package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/internal/sqlstore"
	"github.com/envvault/envvault/vault"
)

// tx is a vault.Tx: every statement is scoped to userID, so another user's
// id matches no row and answers ENOTFOUND like an id that never existed.
type tx struct {
	tx     pgx.Tx
	userID string
}

var _ vault.Tx = (*tx)(nil)

// checkOwner returns an internal error if a row of user owner is written
// in the transaction of another.
func (t *tx) checkOwner(kind, id, owner string) error {
	return sqlstore.CheckOwner(kind, id, owner, t.userID)
}

// listWhere returns the WHERE clause and arguments of a list page: the
// user's rows whose names contain f.Query, case-insensitively, after
// f.After in (name, id) order. Both sides of the substring test are in the
// database's default collation, so that upper() folds them alike; the
// name column itself is "C".
func (t *tx) listWhere(alias string, f vault.ListFilter) (string, []any) {
	w := sqlstore.ListWhere(sqlstore.Dollar, `strpos(upper(%s.name COLLATE "default"), upper(?)) > 0`, alias, t.userID, f)
	return w.String(), w.Args
}
