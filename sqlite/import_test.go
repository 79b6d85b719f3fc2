package sqlite_test

import (
	"testing"

	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

// TestImport runs the import suite on SQLite.
func TestImport(t *testing.T) {
	storetest.RunImport(t, func(t *testing.T) vault.Store { return mustOpen(t) })
}
