package vault

import (
	"context"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// Page limits shared by every list.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// Page is one page of a list and the cursor of the next, "" on the last.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// ListOptions are a list request as the user gives it.
type ListOptions struct {
	Query  string
	Cursor string
	Limit  int // 0 means DefaultPageLimit
}

// Cursor is a position in a list: the sort key and id of the last item of
// the previous page. The key is the name for secrets and profiles.
type Cursor struct {
	Key string
	ID  string
}

func (c Cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.Key + "\x00" + c.ID))
}

// Filter checks the options and turns them into a store's ListFilter.
// Returns EINVALID for a bad limit, query or cursor.
func (o ListOptions) Filter() (ListFilter, error) {
	f := ListFilter{Query: o.Query, Limit: o.Limit}
	if f.Limit == 0 {
		f.Limit = DefaultPageLimit
	}
	if f.Limit < 1 || f.Limit > MaxPageLimit {
		return f, Invalid("limit", "must be between 1 and %d", MaxPageLimit)
	}
	if len(o.Query) > MaxNameLen || strings.IndexByte(o.Query, 0) >= 0 || !utf8.ValidString(o.Query) {
		return f, Invalid("q", "must be valid UTF-8 of at most %d characters without NUL bytes", MaxNameLen)
	}
	if o.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(o.Cursor)
		name, id, ok := strings.Cut(string(raw), "\x00")
		if err != nil || !ok || id == "" {
			return f, Invalid("cursor", "is not a cursor this API returned")
		}
		f.After = &Cursor{Key: name, ID: id}
	}
	return f, nil
}

// NewPage cuts items, fetched with limit+1, to a page of limit and the
// cursor of the next page, if there is one.
func NewPage[T any](items []T, limit int, cursor func(T) Cursor) Page[T] {
	p := Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = cursor(items[limit-1]).encode()
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

// StatementViewer is what a Store may offer besides View: ViewStatement
// runs fn, a read of exactly one statement, as View would, in one round
// trip to its database where View takes several. A second statement in fn
// fails.
type StatementViewer interface {
	ViewStatement(ctx context.Context, userID string, fn func(Tx) error) error
}

// LockedUpdater is what a Store may offer besides Update: UpdateLocked
// runs fn, a write of the user's object id alone, as Update does, but may
// commit it in one transaction with other callers' writes, so that many
// writes share one commit (on PostgreSQL: postgres/group.go). fn must take
// Tx.Lock(ctx, id) and no other lock, and write nothing before its first
// read has answered; it may run twice (in the shared transaction, and
// again alone if that one rolled back), so it may have no effect outside
// its Tx but the results it sets.
type LockedUpdater interface {
	UpdateLocked(ctx context.Context, userID, id string, fn func(Tx) error) error
}

// updateLocked runs fn, a write of the user's object id alone (see
// LockedUpdater), through UpdateLocked if the store has it.
func updateLocked(ctx context.Context, st Store, userID, id string, fn func(Tx) error) error {
	if lu, ok := st.(LockedUpdater); ok {
		return lu.UpdateLocked(ctx, userID, id, fn)
	}
	return st.Update(ctx, userID, fn)
}

// view returns what read, which issues one statement, finds in a read-only
// transaction of the user: through ViewStatement if the store has it.
func view[T any](ctx context.Context, st Store, userID string, read func(Tx) (T, error)) (T, error) {
	var out T
	run := st.View
	if sv, ok := st.(StatementViewer); ok {
		run = sv.ViewStatement
	}
	err := run(ctx, userID, func(tx Tx) (err error) {
		out, err = read(tx)
		return err
	})
	return out, err
}

// listPage reads one page of a user's list: it checks o, asks read for one
// item more than the page holds (which tells whether a next page exists),
// and cuts the result to the page and the cursor of the next. Returns
// EINVALID for a bad limit, query or cursor.
func listPage[T any](ctx context.Context, st Store, userID string, o ListOptions,
	read func(Tx, context.Context, ListFilter) ([]T, error), cursor func(T) Cursor) (Page[T], error) {
	f, err := o.Filter()
	if err != nil {
		return Page[T]{}, err
	}
	limit := f.Limit
	f.Limit++
	list, err := view(ctx, st, userID, func(tx Tx) ([]T, error) { return read(tx, ctx, f) })
	if err != nil {
		return Page[T]{}, err
	}
	return NewPage(list, limit, cursor), nil
}
