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
		return storetest.HistoryBackend{Store: db, CountVersions: countVersions(url)}
	})
}

// TestHistoryConformanceAsServiceRole runs it as envvault serves: as a
// member of envvault_app, under row-level security. The rows are counted
// as the superuser, who sees every user's.
func TestHistoryConformanceAsServiceRole(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) storetest.HistoryBackend {
		d := newRLSDB(t)
		return storetest.HistoryBackend{Store: d.service, CountVersions: countVersions(d.Super)}
	})
}

// countVersions counts a secret's rows in secret_versions on another
// connection, as an operator's psql would.
func countVersions(url string) func(ctx context.Context, secretID string) (int, error) {
	return func(ctx context.Context, secretID string) (int, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var n int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM secret_versions WHERE secret_id = $1`, secretID).Scan(&n)
		return n, err
	}
}
