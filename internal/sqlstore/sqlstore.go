// Package sqlstore is what the two SQL stores, packages sqlite and
// postgres, write alike: the WHERE clauses of their list queries (in each
// dialect's placeholders), the column lists of the tables both name alike,
// and the row rules that do not depend on the driver. What the dialects do
// differently stays in each store: the time codec (INTEGER microseconds or
// timestamptz), the scans of nullable columns, the substring test of a
// name, and the classification of driver errors (by SQLite extended code
// or PostgreSQL SQLSTATE).
package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Placeholder writes the n-th (from 1) parameter of a statement in a
// dialect's style.
type Placeholder func(n int) string

// Question is SQLite's placeholder: ?.
func Question(int) string { return "?" }

// Dollar is PostgreSQL's placeholder: $n.
func Dollar(n int) string { return "$" + strconv.Itoa(n) }

// Where is the AND-ed conditions of a WHERE clause and their arguments, in
// order.
type Where struct {
	ph    Placeholder
	conds []string
	Args  []any
}

// NewWhere returns an empty Where that writes parameters with ph.
func NewWhere(ph Placeholder) *Where { return &Where{ph: ph} }

// Add appends cond, in which each "?" stands for the next of args.
func (w *Where) Add(cond string, args ...any) {
	var b strings.Builder
	for _, a := range args {
		i := strings.IndexByte(cond, '?')
		if i < 0 {
			panic("sqlstore: condition " + cond + " has fewer ? than arguments")
		}
		w.Args = append(w.Args, a)
		b.WriteString(cond[:i] + w.ph(len(w.Args)))
		cond = cond[i+1:]
	}
	b.WriteString(cond)
	w.conds = append(w.conds, b.String())
}

// String returns the conditions joined by AND.
func (w *Where) String() string { return strings.Join(w.conds, " AND ") }

// CheckOwner returns an error if a row of user owner is written in a
// transaction of user txUser: a caller's mistake, never a client's, so it
// is an internal error, not a vault code.
func CheckOwner(kind, id, owner, txUser string) error {
	if owner != txUser {
		return fmt.Errorf("%s %s is of user %s, not of the transaction's user %s", kind, id, owner, txUser)
	}
	return nil
}
