package postgres_test

import (
	"testing"

	"github.com/envvault/envvault/storetest"
)

// TestConformance runs the one store suite on PostgreSQL, each subtest on a
// fresh database.
func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}
