package postgres

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// tx is a vault.Tx: every statement is scoped to userID, so another user's
// id matches no row and answers ENOTFOUND like an id that never existed.
type tx struct {
	tx     pgx.Tx
	userID string
}

var _ vault.Tx = (*tx)(nil)

// listWhere builds the WHERE clause of a list over table alias a, with a
// separate text per case so that each can use the (user_id, name, id)
// index.
func listWhere(a, userID string, f vault.ListFilter) (string, []any) {
	args := []any{userID}
	var b strings.Builder
	b.WriteString(a + `.user_id = $1`)
	if f.Query != "" {
		args = append(args, f.Query)
		// Both sides in the database's default collation, so that upper()
		// folds them alike; the name column itself is "C".
		fmt.Fprintf(&b, ` AND strpos(upper(%s.name COLLATE "default"), upper($%d)) > 0`, a, len(args))
	}
	if f.After != nil {
		args = append(args, f.After.Key, f.After.ID)
		fmt.Fprintf(&b, ` AND (%s.name, %s.id) > ($%d, $%d)`, a, a, len(args)-1, len(args))
	}
	return b.String(), args
}
