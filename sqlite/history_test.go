package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/storetest"
)

func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) storetest.HistoryBackend {
		path := filepath.Join(t.TempDir(), "envvault.db")
		db := mustOpenPath(t, path)
		// A second handle on the file, as an operator's sqlite3 shell would
		// be, reads the table behind the store's back.
		raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_query_only=1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = raw.Close() })
		return storetest.HistoryBackend{
			Store: db,
			CountVersions: func(ctx context.Context, secretID string) (n int, err error) {
				err = raw.QueryRowContext(ctx, `SELECT count(*) FROM secret_versions WHERE secret_id = ?`, secretID).Scan(&n)
				return n, err
			},
		}
	})
}
