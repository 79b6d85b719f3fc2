// Package testvault builds the real vault that tests of the layers above
// the store run on: a migrated SQLite file and a Service with a fresh key.
package testvault

import (
	"context"
	"testing"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// MustSQLite opens the SQLite file at path (normally in t.TempDir()) and
// migrates it; the store is closed when the test ends.
func MustSQLite(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// MustKeyring returns a keyring of one fresh random master key.
func MustKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// MustService returns a Service on store with a fresh master key, its keys
// checked as start-up checks them.
func MustService(t testing.TB, store vault.Store, opts vault.Options) *vault.Service {
	t.Helper()
	svc := vault.NewService(store, MustKeyring(t), opts)
	if err := svc.CheckKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}
