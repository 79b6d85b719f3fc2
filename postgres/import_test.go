package postgres_test

import (
	"testing"

	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

// TestImport runs the import suite on PostgreSQL, with the store connected
// as the service role, under row-level security.
func TestImport(t *testing.T) {
	storetest.RunImport(t, func(t *testing.T) vault.Store { return newRLSDB(t).service })
}
