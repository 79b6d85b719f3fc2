package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// unavailableFixture is a migrated store under a real Service, with a user.
type unavailableFixture struct {
	db     *DB
	svc    *vault.Service
	userID string
}

func newUnavailableFixture(t *testing.T) *unavailableFixture {
	t.Helper()
	db := openMigrated(t)
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := vault.NewService(db, keys, vault.Options{})
	u, _, err := svc.CreateUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return &unavailableFixture{db: db, svc: svc, userID: u.ID}
}

// create makes a secret named name and returns the error.
func (f *unavailableFixture) create(ctx context.Context, name string) error {
	_, err := f.svc.CreateSecret(ctx, f.userID, vault.SecretInput{Name: name, Value: strings.Repeat("v", 8<<10)})
	return err
}

// mustCreate makes a secret and fails the test if it cannot.
func (f *unavailableFixture) mustCreate(t *testing.T, name string) {
	t.Helper()
	if err := f.create(t.Context(), name); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// wantUnavailable fails unless err is EUNAVAILABLE that still wraps the
// driver's error (for the logs).
func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	if code := vault.ErrorCode(err); code != vault.EUNAVAILABLE {
		t.Fatalf("error %v: code %q, want %q", err, code, vault.EUNAVAILABLE)
	}
	if code(err) == 0 {
		t.Fatalf("error %v does not wrap the driver's error", err)
	}
}

// wantConsistent checks that the store holds exactly names' secrets, each
// with its audit event, and that the audit chain verifies.
func (f *unavailableFixture) wantConsistent(t *testing.T, names ...string) {
	t.Helper()
	ctx := t.Context()
	var secrets, events int
	if err := f.db.read.QueryRowContext(ctx, `SELECT count(*) FROM secrets`).Scan(&secrets); err != nil {
		t.Fatal(err)
	}
	if err := f.db.read.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE action = ?`, vault.ActionSecretCreate).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if secrets != len(names) || events != len(names) {
		t.Fatalf("%d secrets and %d create events, want %d of each (%v)", secrets, events, len(names), names)
	}
	rep, err := vault.VerifyAudit(ctx, f.db)
	if err != nil {
		t.Fatalf("verify audit: %v", err)
	}
	if rep.Break != nil || rep.Events == 0 {
		t.Fatalf("audit chain does not verify: %+v", rep)
	}
}

// A lock held elsewhere for longer than the busy timeout is EUNAVAILABLE;
// once it is released the same DB writes again.
func TestBusyIsUnavailable(t *testing.T) {
	f := newUnavailableFixture(t)
	ctx := t.Context()
	// The pool has one connection: the shorter timeout stays on it, so the
	// test waits 50 ms rather than busyTimeout.
	if _, err := f.db.write.ExecContext(ctx, `PRAGMA busy_timeout = 50`); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", f.db.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, f.create(ctx, "DURING_LOCK"))

	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	f.mustCreate(t, "AFTER_LOCK")
	f.wantConsistent(t, "AFTER_LOCK")
}

// A full disk (here: the page limit reached) is EUNAVAILABLE, leaves
// nothing half-written, and writes work again once there is room.
func TestFullIsUnavailable(t *testing.T) {
	f := newUnavailableFixture(t)
	ctx := t.Context()
	f.mustCreate(t, "BEFORE_FULL")
	var pages int
	if err := f.db.write.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.write.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages+2)); err != nil {
		t.Fatal(err)
	}
	created := []string{"BEFORE_FULL"}
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		name := "FILL_" + strconv.Itoa(i)
		if err = f.create(ctx, name); err == nil {
			created = append(created, name)
		}
	}
	wantUnavailable(t, err)
	f.wantConsistent(t, created...)

	if _, err := f.db.write.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	f.mustCreate(t, "AFTER_FULL")
	f.wantConsistent(t, append(created, "AFTER_FULL")...)
}

// A data directory gone from under the process is EUNAVAILABLE when the
// read pool opens a connection; put back, the same DB reads again.
func TestVanishedDirectoryIsUnavailable(t *testing.T) {
	f := newUnavailableFixture(t)
	ctx := t.Context()
	f.mustCreate(t, "BEFORE_MOVE")
	// A pool keeping no idle connection opens one per read, as a pool
	// growing under load does.
	f.db.read.SetMaxIdleConns(0)
	dir := filepath.Dir(f.db.path)
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Secrets(ctx, f.userID, vault.ListOptions{})
	wantUnavailable(t, err)
	// The reads of every request's authentication, straight on the pool:
	// unavailable too, not "no such token" (401) or an internal error.
	_, err = f.db.Token(ctx, "tok_nonexistent")
	wantUnavailable(t, err)
	_, err = f.db.Session(ctx, f.userID, "nonexistent")
	wantUnavailable(t, err)
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	f.mustCreate(t, "AFTER_MOVE")
	f.wantConsistent(t, "BEFORE_MOVE", "AFTER_MOVE")
}

// A write attempted in a read-only transaction is this code's mistake, not
// an unreachable store: it stays an internal error.
func TestWriteInViewIsNotUnavailable(t *testing.T) {
	f := newUnavailableFixture(t)
	err := f.db.View(t.Context(), f.userID, func(vt vault.Tx) error {
		_, err := vt.(*tx).tx.ExecContext(t.Context(), `DELETE FROM secrets`)
		return err
	})
	if err == nil {
		t.Fatal("a write in View succeeded")
	}
	if c := vault.ErrorCode(err); c == vault.EUNAVAILABLE {
		t.Fatalf("a write in View is %q (%v): it is a bug, not an unreachable store", c, err)
	}
}
