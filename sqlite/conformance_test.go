package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/storetest"
)

// TestConformance runs the one conformance suite on SQLite, each subtest
// on a fresh database file.
func TestConformance(t *testing.T) {
	storetest.Run(t, newHarness)
}

// newHarness opens a fresh, migrated file and a second handle on it, as an
// operator's sqlite3 shell would be (foreign keys on, so the cascades run),
// to change it behind the store's back.
func newHarness(t *testing.T) storetest.Harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envvault.db")
	db := mustOpenPath(t, path)
	raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open a second handle on %s: %v", path, err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return storetest.Harness{
		Store: db,
		Exec: func(ctx context.Context, query string, args ...any) (int64, error) {
			res, err := raw.ExecContext(ctx, query, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
		QueryInt: func(ctx context.Context, query string, args ...any) (n int64, err error) {
			err = raw.QueryRowContext(ctx, query, args...).Scan(&n)
			return n, err
		},
		Unguard: []string{`DROP TRIGGER audit_events_no_update`, `DROP TRIGGER audit_events_prune_only`},
		FailAppends: []string{`CREATE TRIGGER test_audit_down BEFORE INSERT ON audit_events
			BEGIN SELECT RAISE(ABORT, 'the audit trail is down'); END`},
		RestoreAppends: []string{`DROP TRIGGER test_audit_down`},
		SetPruneBatch:  sqlite.SetPruneBatch,
	}
}
