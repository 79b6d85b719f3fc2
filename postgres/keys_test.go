package postgres_test

import (
	"testing"

	"github.com/envvault/envvault/storetest"
)

// TestRotation runs the master-key rotation suite on PostgreSQL, each
// subtest on a fresh database.
func TestRotation(t *testing.T) {
	storetest.RunRotation(t, newStore)
}
