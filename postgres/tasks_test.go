package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/storetest"
)

// TestTasksConformance runs the task store suite on PostgreSQL, each
// subtest on a fresh database.
// deleteUserVia returns a TaskBackend.DeleteUser that deletes the user on a
// connection of its own to url, as an operator in psql would.
func deleteUserVia(url string) func(ctx context.Context, userID string) error {
	return func(ctx context.Context, userID string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		tag, err := conn.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
		if err != nil {
			return err
		}
		if n := tag.RowsAffected(); n != 1 {
			return fmt.Errorf("deleted %d users, want 1", n)
		}
		return nil
	}
}

func TestTasksConformance(t *testing.T) {
	storetest.RunTasks(t, func(t *testing.T) storetest.TaskBackend {
		db, url := openDB(t)
		return storetest.TaskBackend{
			Store: db,
			// Another connection, as an operator's psql would be.
			DeleteUser: deleteUserVia(url),
		}
	})
}
