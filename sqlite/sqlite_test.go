package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

// mustOpen opens and migrates a fresh database file in a temporary
// directory, closed when the test ends.
func mustOpen(t *testing.T) *sqlite.DB {
	t.Helper()
	return mustOpenPath(t, filepath.Join(t.TempDir(), "envvault.db"))
}

func mustOpenPath(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close %s: %v", path, err)
		}
	})
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate %s: %v", path, err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vault.Store { return mustOpen(t) })
}
