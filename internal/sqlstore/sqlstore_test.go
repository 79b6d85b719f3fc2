package sqlstore

import (
	"slices"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

func TestWherePlaceholders(t *testing.T) {
	for _, tc := range []struct {
		ph   Placeholder
		want string
	}{
		{Question, "a.user_id = ? AND instr(a.name, ?) > 0 AND (a.name, a.id) > (?, ?)"},
		{Dollar, "a.user_id = $1 AND instr(a.name, $2) > 0 AND (a.name, a.id) > ($3, $4)"},
	} {
		w := ListWhere(tc.ph, "instr(%s.name, ?) > 0", "a", "usr_1", vault.ListFilter{Query: "q", After: &vault.Cursor{Key: "k", ID: "i"}})
		if got := w.String(); got != tc.want {
			t.Errorf("where = %q, want %q", got, tc.want)
		}
		if !slices.Equal(w.Args, []any{"usr_1", "q", "k", "i"}) {
			t.Errorf("args = %v", w.Args)
		}
	}
}

func TestTaskPageWhereRefusesABadCursor(t *testing.T) {
	_, err := TaskPageWhere(Dollar, func(t time.Time) any { return t }, "usr_1", vault.ListFilter{After: &vault.Cursor{Key: "x"}})
	if vault.ErrorCode(err) != vault.EINVALID || vault.ErrorField(err) != "cursor" {
		t.Errorf("bad cursor: %v, want EINVALID on cursor", err)
	}
}
