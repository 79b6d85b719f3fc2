package sqlstore

import (
	"fmt"

	"github.com/envvault/envvault/vault"
)

// ListWhere is the WHERE clause of a page of the user's secrets or
// profiles, over table alias a: the user's rows, whose names contain
// f.Query, after f.After in (name, id) order. contains is the dialect's
// test that a's name contains the one parameter "?", as a format with %s
// for a. Each case is its own text, so each can use the (user_id, name,
// id) index.
func ListWhere(ph Placeholder, contains, a, userID string, f vault.ListFilter) *Where {
	w := NewWhere(ph)
	w.Add(a+".user_id = ?", userID)
	if f.Query != "" {
		w.Add(fmt.Sprintf(contains, a), f.Query)
	}
	if f.After != nil {
		w.Add("("+a+".name, "+a+".id) > (?, ?)", f.After.Key, f.After.ID)
	}
	return w
}
