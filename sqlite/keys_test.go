package sqlite_test

import (
	"testing"

	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
)

// TestRotation runs the master-key rotation suite on SQLite files.
func TestRotation(t *testing.T) {
	storetest.RunRotation(t, func(t *testing.T) vault.Store { return mustOpen(t) })
}
