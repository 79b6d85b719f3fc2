package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

// listJSON is one page of a list: the items and the cursor of the next
// page, null on the last.
type listJSON[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func newListJSON[T any](items []T, next string) listJSON[T] {
	l := listJSON[T]{Data: items}
	if l.Data == nil {
		l.Data = []T{}
	}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

// listOptions reads the query parameters of a list: limit (1 to
// vault.MaxPageLimit), cursor and q, each at most once. The vault checks
// cursor and q.
func listOptions(c echo.Context) (vault.ListOptions, error) {
	var o vault.ListOptions
	q := c.QueryParams()
	for _, name := range []string{"limit", "cursor", "q"} {
		if len(q[name]) > 1 {
			return o, vault.Invalid(name, "must be given at most once")
		}
	}
	if vals, ok := q["limit"]; ok {
		n, err := strconv.Atoi(vals[0])
		if err != nil || n < 1 || n > vault.MaxPageLimit {
			return o, vault.Invalid("limit", "must be an integer between 1 and %d", vault.MaxPageLimit)
		}
		o.Limit = n
	}
	o.Cursor = q.Get("cursor")
	o.Query = q.Get("q")
	return o, nil
}

// listPage answers a GET of a list: one page of the user's items that list
// returns for opts, each shown as toJSON shows it.
func listPage[O, T, J any](c echo.Context, opts O,
	list func(ctx context.Context, userID string, opts O) (vault.Page[T], error), toJSON func(T) J) error {
	ctx := c.Request().Context()
	page, err := list(ctx, UserID(ctx), opts)
	if err != nil {
		return err
	}
	out := make([]J, len(page.Items))
	for i, item := range page.Items {
		out[i] = toJSON(item)
	}
	return writeJSON(c, http.StatusOK, newListJSON(out, page.NextCursor))
}
