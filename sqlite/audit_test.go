package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

func TestAudit(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) vault.Store { return mustOpen(t) })
}

// TestAuditTamper changes the trail with raw SQL on a second handle on the
// file, as anyone who can write the file could.
func TestAuditTamper(t *testing.T) {
	storetest.RunAuditTamper(t, func(t *testing.T) storetest.RawAudit {
		path := filepath.Join(t.TempDir(), "envvault.db")
		store := mustOpenPath(t, path)
		raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		return storetest.RawAudit{
			Store: store,
			Exec: func(query string, args ...any) error {
				_, err := raw.ExecContext(t.Context(), query, args...)
				return err
			},
			Unguard: []string{`DROP TRIGGER audit_events_no_update`, `DROP TRIGGER audit_events_prune_only`},
			FailAppends: []string{`CREATE TRIGGER test_audit_down BEFORE INSERT ON audit_events
				BEGIN SELECT RAISE(ABORT, 'the audit trail is down'); END`},
			RestoreAppends: []string{`DROP TRIGGER test_audit_down`},
		}
	})
}
