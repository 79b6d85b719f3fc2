package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/storetest"
)

func TestTasksConformance(t *testing.T) {
	storetest.RunTasks(t, func(t *testing.T) storetest.TaskBackend {
		path := filepath.Join(t.TempDir(), "envvault.db")
		return storetest.TaskBackend{
			Store: mustOpenPath(t, path),
			DeleteUser: func(ctx context.Context, userID string) error {
				// A second handle on the file, as an operator's sqlite3
				// shell would be; foreign keys on, so the cascades run.
				raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
				if err != nil {
					return err
				}
				defer raw.Close()
				res, err := raw.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, userID)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil || n != 1 {
					return fmt.Errorf("deleted %d users, %v; want 1", n, err)
				}
				return nil
			},
		}
	})
}
