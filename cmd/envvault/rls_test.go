package main

import (
	"strings"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/seal"
)

// TestServePostgresRLS is TestServePostgres as the README runs envvault
// on PostgreSQL: the owner migrates (DATABASE_MIGRATE_URL), serve, user
// create and keys rotate run as the service role, under row-level
// security (DATABASE_URL).
func TestServePostgresRLS(t *testing.T) {
	t.Parallel()
	roles := testenv.RequirePostgresRoles(t)
	testServe(t, map[string]string{"DATABASE_URL": roles.Service, "DATABASE_MIGRATE_URL": roles.Owner})
}

// TestDatabaseRoles: the service role alone cannot migrate, and says what
// to do; once the owner has, it serves; serve warns when its role passes
// through row-level security, and not otherwise.
func TestDatabaseRoles(t *testing.T) {
	t.Parallel()
	roles := testenv.RequirePostgresRoles(t)
	key := seal.GenerateKey()
	const warning = "row-level security does not apply to it"

	mustFail(t, map[string]string{"ENCRYPTION_KEY": key, "DATABASE_URL": roles.Service}, "set DATABASE_MIGRATE_URL to the tables' owner", "migrate")
	mustFail(t, map[string]string{"ENCRYPTION_KEY": key, "DATABASE_MIGRATE_URL": roles.Owner}, "DATABASE_MIGRATE_URL is set but DATABASE_URL is not", "migrate")
	mustStart(t, map[string]string{"DATABASE_URL": roles.Service, "DATABASE_MIGRATE_URL": roles.Owner}, "migrate")

	// Once the owner has migrated, the service role alone starts: it may
	// read which migrations are applied.
	service := mustStart(t, map[string]string{"ENCRYPTION_KEY": key, "DATABASE_URL": roles.Service},
		"serve", "--addr", "127.0.0.1:0", "--no-worker")
	if strings.Contains(service.stderr.String(), warning) {
		t.Errorf("serve as the service role warned that row-level security does not apply:\n%s", service.stderr.String())
	}
	super := mustStart(t, map[string]string{"ENCRYPTION_KEY": key, "DATABASE_URL": roles.Super},
		"serve", "--addr", "127.0.0.1:0", "--no-worker")
	if !strings.Contains(super.stderr.String(), warning) {
		t.Errorf("serve as a superuser did not warn that row-level security does not apply:\n%s", super.stderr.String())
	}
	for _, in := range []*instance{service, super} {
		if strings.Contains(in.output(), "PASSWORD") || strings.Contains(in.output(), "@127.0.0.1") {
			t.Errorf("serve printed a connection string:\n%s", in.output())
		}
	}
}
