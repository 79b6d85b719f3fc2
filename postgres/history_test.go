package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/storetest"
)

// TestHistoryConformance runs the secret history suite on PostgreSQL, each
// subtest on a fresh database.
func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) storetest.HistoryBackend {
		db, url := openDB(t)
		return storetest.HistoryBackend{
			Store: db,
			CountVersions: func(ctx context.Context, secretID string) (int, error) {
				// Another connection, as an operator's psql would be.
				conn, err := pgx.Connect(ctx, url)
				if err != nil {
					return 0, err
				}
				defer conn.Close(context.WithoutCancel(ctx))
				var n int
				err = conn.QueryRow(ctx, `SELECT count(*) FROM secret_versions WHERE secret_id = $1`, secretID).Scan(&n)
				return n, err
			},
		}
	})
}
