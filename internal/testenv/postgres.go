// Package testenv finds the real dependencies tests need (PostgreSQL,
// Docker, a browser). When one is missing, a test skips with a message that
// says exactly what is missing and how to get it; with CI=true it fails
// instead, so CI never passes by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURLEnv names the variable holding a superuser URL to a throwaway
// PostgreSQL cluster that tests may create and drop databases in.
const PostgresURLEnv = "ENVVAULT_TEST_DATABASE_URL"

// CI reports whether the tests run in CI (CI=true, or any value
// strconv.ParseBool reads as true).
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// RequirePostgres returns the URL of a fresh, empty database on the cluster
// that ENVVAULT_TEST_DATABASE_URL names, and drops that database (closing
// any connection still open to it) when the test ends.
//
// If the variable is unset, the test skips, or fails with CI=true. If it is
// set but the cluster does not answer, the test fails: a broken install is
// never hidden behind a skip.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresURLEnv)
	if admin == "" {
		if CI() {
			t.Fatal("PostgreSQL is required in CI: " + PostgresURLEnv + " is not set; run ./scripts/test")
		}
		t.Skip("PostgreSQL tests skipped: " + PostgresURLEnv + " is not set. " +
			"Run ./scripts/test, which starts a throwaway PostgreSQL cluster and sets it, " +
			"or set it yourself to a superuser URL of a throwaway cluster " +
			"(postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)")
	}

	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatalf("random database name: %v", err)
	}
	name := "envvault_test_" + hex.EncodeToString(raw[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL at %s does not answer (it is set, so this is a broken install, not a skip): %v", PostgresURLEnv, err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}

	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(t, admin, name)
}

// withDatabase returns the connection string admin with its database
// replaced by name. It accepts both URL and keyword/value forms.
func withDatabase(t testing.TB, admin, name string) string {
	t.Helper()
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		u, err := url.Parse(admin)
		if err != nil {
			// url.Parse errors quote the input, which may hold a password.
			t.Fatalf("%s is not a valid URL", PostgresURLEnv)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String()
	}
	// In keyword/value form the last setting of a keyword wins.
	return admin + " dbname=" + name
}
