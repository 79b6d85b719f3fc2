package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresRoles are the connection strings of one fresh database set up
// as the README says to run envvault on PostgreSQL under row-level
// security.
type PostgresRoles struct {
	// Super is the test cluster's superuser, on this database. Superusers
	// pass through row-level security: it sees every row, as an operator's
	// psql would.
	Super string
	// Owner owns the database and its public schema: it applies the
	// migrations (DATABASE_MIGRATE_URL).
	Owner string
	// Service is a member of envvault_app: the role envvault serves as
	// (DATABASE_URL).
	Service string
}

// RequirePostgresRoles returns a fresh database, as RequirePostgres does,
// with two login roles of its own, neither superuser nor BYPASSRLS: an
// owner and a service role granted envvault_app. The database is not
// migrated. The roles and the database are dropped when the test ends.
func RequirePostgresRoles(t testing.TB) PostgresRoles {
	t.Helper()
	super := RequirePostgres(t)
	cfg, err := pgx.ParseConfig(super)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresURLEnv, err)
	}
	dbName := pgx.Identifier{cfg.Database}.Sanitize()
	suffix, password := randomHex(t), randomHex(t)
	owner, service := "envvault_owner_"+suffix, "envvault_service_"+suffix

	superExec(t, super,
		`CREATE ROLE `+owner+` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE PASSWORD '`+password+`'`,
		`CREATE ROLE `+service+` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE PASSWORD '`+password+`'`,
		`ALTER DATABASE `+dbName+` OWNER TO `+owner,
		// The owner has no CREATEROLE, so the operator makes envvault_app
		// (the migration would, given CREATEROLE). Roles are the
		// cluster's: a test running beside this one may make it at the
		// same moment.
		`DO $$ BEGIN CREATE ROLE envvault_app NOLOGIN;
			EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`,
		`GRANT envvault_app TO `+service,
	)
	t.Cleanup(func() {
		// The roles can go only once the objects they own have: the
		// database. RequirePostgres's cleanup, which runs after this one,
		// drops it IF EXISTS.
		superExec(t, os.Getenv(PostgresURLEnv),
			`DROP DATABASE IF EXISTS `+dbName+` WITH (FORCE)`,
			`DROP ROLE IF EXISTS `+owner,
			`DROP ROLE IF EXISTS `+service)
	})
	return PostgresRoles{
		Super:   super,
		Owner:   withRole(t, super, owner, password),
		Service: withRole(t, super, service, password),
	}
}

// superExec runs statements as the test cluster's superuser on the
// database of url.
func superExec(t testing.TB, url string, stmts ...string) {
	t.Helper()
	// t.Context is canceled before cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to PostgreSQL as superuser: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("as superuser: %s: %v", strings.SplitN(s, " PASSWORD ", 2)[0], err)
		}
	}
}

func randomHex(t testing.TB) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// withRole returns the connection string base with its user and password
// replaced. It accepts both URL and keyword/value forms.
func withRole(t testing.TB, base, user, password string) string {
	t.Helper()
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			// url.Parse errors quote the input, which may hold a password.
			t.Fatalf("%s is not a valid URL", PostgresURLEnv)
		}
		u.User = url.UserPassword(user, password)
		return u.String()
	}
	// In keyword/value form the last setting of a keyword wins.
	return base + " user=" + user + " password=" + password
}
