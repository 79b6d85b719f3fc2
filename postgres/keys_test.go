package postgres_test

import (
	"testing"

	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

// TestRotation runs the master-key rotation suite on PostgreSQL, each
// subtest on a fresh database.
func TestRotation(t *testing.T) {
	storetest.RunRotation(t, newStore)
}

// TestRotationAsServiceRole runs the rotation suite as a role that
// row-level security applies to, as the service connects in production:
// the cross-user methods of rotation must see every user's rows.
func TestRotationAsServiceRole(t *testing.T) {
	storetest.RunRotation(t, func(t *testing.T) vault.Store { return newRLSDB(t).service })
}
