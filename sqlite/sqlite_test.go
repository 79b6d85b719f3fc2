package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// mustOpen opens and migrates a fresh database file in a temporary
// directory, closed when the test ends.
func mustOpen(t *testing.T) *sqlite.DB {
	t.Helper()
	return mustOpenPath(t, filepath.Join(t.TempDir(), "envvault.db"))
}

func mustOpenPath(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close %s: %v", path, err)
		}
	})
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate %s: %v", path, err)
	}
	return db
}

// The grant rule is the service's: another user's profile is EINVALID on
// profile_ids (the store's schema refuses it too, as an internal error:
// TestGrantToAnotherUsersProfileIsRefusedBySchema).
func TestGrantToAnotherUsersProfileIsRefusedByService(t *testing.T) {
	svc := testvault.MustService(t, mustOpen(t), vault.Options{})
	var users [2]string
	var profiles [2]*vault.Profile
	for i := range users {
		u, _, err := svc.CreateUser(t.Context(), "u")
		if err != nil {
			t.Fatal(err)
		}
		users[i] = u.ID
		if profiles[i], err = svc.CreateProfile(t.Context(), u.ID, vault.ProfileInput{Name: "p", Image: "alpine"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := svc.CreateSecret(t.Context(), users[0], vault.SecretInput{Name: "S", Value: "v", Scope: vault.ScopeAgents,
		ProfileIDs: []string{profiles[1].ID}})
	if vault.ErrorCode(err) != vault.EINVALID || vault.ErrorField(err) != "profile_ids" {
		t.Errorf("grant to another user's profile: got %v, want EINVALID on profile_ids", err)
	}
}

func TestMigrateTwice(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "envvault.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n, err := db.Migrate(t.Context())
	if err != nil || n < 1 {
		t.Fatalf("first migrate: %d, %v; want at least 1 applied", n, err)
	}
	n, err = db.Migrate(t.Context())
	if err != nil || n != 0 {
		t.Fatalf("second migrate: %d, %v; want 0 applied", n, err)
	}
}

// Two handles on one file stand for two processes: SQLite's locks, not
// anything in this process, keep them apart.
func TestMigrateFromTwoHandlesAtOnce(t *testing.T) {
	total := countMigrations(t)
	for _, tc := range []struct {
		name  string
		setup string
	}{
		{"fresh file", ""},
		// goose's own version table already there (as goose makes it), so
		// both handles reach the first migration together.
		{"version table present", `
			CREATE TABLE goose_db_version (
				id INTEGER PRIMARY KEY AUTOINCREMENT,
				version_id INTEGER NOT NULL,
				is_applied INTEGER NOT NULL,
				tstamp TIMESTAMP DEFAULT (datetime('now')));
			INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1);`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "envvault.db")
			if tc.setup != "" {
				if _, err := rawDB(t, path).ExecContext(t.Context(), tc.setup); err != nil {
					t.Fatal(err)
				}
			}
			var dbs [2]*sqlite.DB
			for i := range dbs {
				db, err := sqlite.Open(t.Context(), path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dbs[i] = db
			}
			var applied [2]int
			var errs [2]error
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, db := range dbs {
				wg.Go(func() {
					<-start
					applied[i], errs[i] = db.Migrate(t.Context())
				})
			}
			close(start)
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("concurrent migrations: %v; %v", errs[0], errs[1])
			}
			if applied[0]+applied[1] != total {
				t.Errorf("the two handles applied %d and %d migrations, want %d in all", applied[0], applied[1], total)
			}
		})
	}
}

func countMigrations(t *testing.T) int {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "count.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.Migrate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Writers on two handles of one file are serialized too: the quota, which
// no unique index guards, holds when two processes race.
func TestWritesFromTwoHandlesAreSerialized(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envvault.db")
	first := mustOpenPath(t, path)
	second := mustOpenPath(t, path)
	keys := testvault.MustKeyring(t)
	const limit = 4
	services := []*vault.Service{
		vault.NewService(first, keys, vault.Options{MaxSecrets: limit}),
		vault.NewService(second, keys, vault.Options{MaxSecrets: limit}),
	}
	u, _, err := services[0].CreateUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	const racers = 10
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			_, errs[i] = services[i%2].CreateSecret(t.Context(), u.ID, vault.SecretInput{Name: fmt.Sprintf("S_%d", i), Value: "v"})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch vault.ErrorCode(err) {
		case "":
			ok++
		case vault.ECONFLICT:
		default:
			t.Errorf("racing create: %v", err)
		}
	}
	if ok != limit {
		t.Errorf("%d creates succeeded, want %d", ok, limit)
	}
}

// A reader is not held up by a writer: WAL mode.
func TestViewDoesNotWaitForUpdate(t *testing.T) {
	db := mustOpen(t)
	svc := vault.NewService(db, testvault.MustKeyring(t), vault.Options{})
	u, _, err := svc.CreateUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	holding := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Update(t.Context(), u.ID, func(tx vault.Tx) error {
			if _, err := tx.CountSecrets(t.Context()); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	if _, err := svc.Secrets(t.Context(), u.ID, vault.ListOptions{}); err != nil {
		t.Errorf("list while a write transaction is open: %v", err)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("ping while a write transaction is open: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("update: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not-a-database")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("this is not sqlite\n"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", ":memory:", "file:x.db", filepath.Join(dir, "a?b.db"), filepath.Join(dir, "missing", "x.db"), notDB, dir} {
		db, err := sqlite.Open(t.Context(), path)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envvault.db")
	keys := testvault.MustKeyring(t)
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	svc := vault.NewService(db, keys, vault.Options{})
	u, _, err := svc.CreateUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.CreateProfile(t.Context(), u.ID, vault.ProfileInput{Name: "p", Image: "alpine"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSecret(t.Context(), u.ID, vault.SecretInput{Name: "KEPT", Value: "kept value"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.CheckKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	again := mustOpenPath(t, path)
	svc = vault.NewService(again, keys, vault.Options{})
	if err := svc.CheckKeys(t.Context()); err != nil {
		t.Fatalf("check keys after reopen: %v", err)
	}
	env, err := svc.GetDecryptedForProfile(t.Context(), u.ID, p.ID)
	if err != nil || env["KEPT"] != "kept value" {
		t.Fatalf("env after reopen: %d names, %v", len(env), err)
	}
}

// rawDB opens the file with the bare driver, for what the Store will not
// do: corrupt a row.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func TestTamperedRowsFailToOpen(t *testing.T) {
	const val = "CANARY-sqlite-tamper-value"
	for _, tc := range []struct {
		name   string
		update string
	}{
		{"flipped value byte", `UPDATE secrets SET sealed_value = CAST(substr(sealed_value, 1, 20) || x'ff' || substr(sealed_value, 22) AS BLOB) WHERE id = ?`},
		{"flipped key byte", `UPDATE secrets SET sealed_key = CAST(substr(sealed_key, 1, length(sealed_key) - 1) || x'00' AS BLOB) WHERE id = ?`},
		{"truncated value", `UPDATE secrets SET sealed_value = substr(sealed_value, 1, 10) WHERE id = ?`},
		{"empty key", `UPDATE secrets SET sealed_key = x'' WHERE id = ?`},
		{"unknown version", `UPDATE secrets SET sealed_key = CAST(x'02' || substr(sealed_key, 2) AS BLOB) WHERE id = ?`},
		{"value of another secret", `UPDATE secrets SET sealed_value = (SELECT sealed_value FROM secrets WHERE name = 'OTHER'), sealed_key = (SELECT sealed_key FROM secrets WHERE name = 'OTHER') WHERE id = ?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "envvault.db")
			db := mustOpenPath(t, path)
			svc := vault.NewService(db, testvault.MustKeyring(t), vault.Options{})
			u, _, err := svc.CreateUser(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			p, err := svc.CreateProfile(t.Context(), u.ID, vault.ProfileInput{Name: "p", Image: "alpine"})
			if err != nil {
				t.Fatal(err)
			}
			s, err := svc.CreateSecret(t.Context(), u.ID, vault.SecretInput{Name: "TAMPERED", Value: val})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.CreateSecret(t.Context(), u.ID, vault.SecretInput{Name: "OTHER", Value: val + "-other"}); err != nil {
				t.Fatal(err)
			}
			if _, err := rawDB(t, path).ExecContext(t.Context(), tc.update, s.ID); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			env, err := svc.GetDecryptedForProfile(t.Context(), u.ID, p.ID)
			if !errors.Is(err, vault.ErrDecrypt) || env != nil {
				t.Fatalf("env of a tampered row: %d names, %v; want none and ErrDecrypt", len(env), err)
			}
			if !strings.Contains(err.Error(), s.ID) || strings.Contains(err.Error(), "CANARY") {
				t.Errorf("decrypt error %q must name %s and hold no value", err, s.ID)
			}
		})
	}
}

// TestTamperedRowInALargeRelease tampers with one secret among 1,000, far
// enough that the release opens it on another goroutine than the first
// (vault.openAll splits a large release): the release fails whole, names
// that secret, and returns no value.
func TestTamperedRowInALargeRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envvault.db")
	db := mustOpenPath(t, path)
	svc := vault.NewService(db, testvault.MustKeyring(t), vault.Options{})
	u, _, err := svc.CreateUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.CreateProfile(t.Context(), u.ID, vault.ProfileInput{Name: "p", Image: "alpine"})
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]vault.ImportEntry, 1000)
	for i := range entries {
		entries[i] = vault.ImportEntry{Line: i + 1, Name: fmt.Sprintf("S%04d", i), Value: fmt.Sprintf("CANARY-%04d-value", i)}
	}
	if _, err := svc.ImportSecrets(t.Context(), u.ID, entries, vault.ScopeAll, nil); err != nil {
		t.Fatal(err)
	}
	if env, err := svc.GetDecryptedForProfile(t.Context(), u.ID, p.ID); err != nil || len(env) != 1000 || env["S0999"] != "CANARY-0999-value" {
		t.Fatalf("release before tampering: %d names, %v", len(env), err)
	}
	var id string
	if err := rawDB(t, path).QueryRowContext(t.Context(), `SELECT id FROM secrets WHERE name = 'S0900'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).ExecContext(t.Context(), `UPDATE secrets SET sealed_value = CAST(substr(sealed_value, 1, 20) || x'ff' || substr(sealed_value, 22) AS BLOB) WHERE id = ?`, id); err != nil {
		t.Fatalf("tamper: %v", err)
	}
	env, err := svc.GetDecryptedForProfile(t.Context(), u.ID, p.ID)
	if !errors.Is(err, vault.ErrDecrypt) || env != nil {
		t.Fatalf("env of a tampered row: %d names, %v; want none and ErrDecrypt", len(env), err)
	}
	if !strings.Contains(err.Error(), id) || strings.Contains(err.Error(), "CANARY") {
		t.Errorf("decrypt error %q must name %s and hold no value", err, id)
	}
}
