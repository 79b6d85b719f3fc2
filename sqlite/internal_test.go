package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

func openMigrated(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "envvault.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestPragmasOnEveryConnection(t *testing.T) {
	db := openMigrated(t)
	for _, tc := range []struct {
		pool  string
		db    *sql.DB
		pragm string
		want  string
	}{
		{"write", db.write, "foreign_keys", "1"},
		{"write", db.write, "journal_mode", "wal"},
		{"write", db.write, "synchronous", "2"}, // FULL: a commit survives power loss
		{"write", db.write, "busy_timeout", "10000"},
		{"write", db.write, "query_only", "0"},
		{"read", db.read, "foreign_keys", "1"},
		{"read", db.read, "journal_mode", "wal"},
		{"read", db.read, "synchronous", "2"},
		{"read", db.read, "busy_timeout", "10000"},
		{"read", db.read, "query_only", "1"},
	} {
		var got string
		if err := tc.db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragm).Scan(&got); err != nil {
			t.Fatalf("%s pool: PRAGMA %s: %v", tc.pool, tc.pragm, err)
		}
		if got != tc.want {
			t.Errorf("%s pool: %s = %s, want %s", tc.pool, tc.pragm, got, tc.want)
		}
	}
	if n := db.write.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("write pool holds up to %d connections, want 1", n)
	}
}

// Durability is a property of each connection, not of the file: every
// connection a pool may open at once must read back synchronous=FULL (2).
func TestSynchronousFullOnEveryConnection(t *testing.T) {
	db := openMigrated(t)
	for _, p := range []struct {
		name string
		db   *sql.DB
	}{{"write", db.write}, {"read", db.read}} {
		n := p.db.Stats().MaxOpenConnections
		conns := make([]*sql.Conn, 0, n)
		for range n {
			c, err := p.db.Conn(t.Context())
			if err != nil {
				t.Fatalf("%s pool: connection %d of %d: %v", p.name, len(conns)+1, n, err)
			}
			conns = append(conns, c)
		}
		if got := p.db.Stats().OpenConnections; got != n {
			t.Fatalf("%s pool: %d connections open, want all %d held at once", p.name, got, n)
		}
		for i, c := range conns {
			var got int
			if err := c.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil {
				t.Fatalf("%s pool: connection %d: PRAGMA synchronous: %v", p.name, i, err)
			}
			if got != 2 {
				t.Errorf("%s pool: connection %d: synchronous = %d, want 2 (FULL)", p.name, i, got)
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

// A taken id breaks every unique index holding the id; the answer must
// still be about the id, not the name.
func TestTakenIDIsAnIDConflict(t *testing.T) {
	db := openMigrated(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &vault.User{ID: vault.NewID(vault.PrefixUser), Name: "alice", CreatedAt: now}
	if err := db.CreateUser(t.Context(), u, &vault.Token{ID: vault.NewID(vault.PrefixToken), UserID: u.ID, Name: "t", Scope: vault.TokenFull, Hash: make([]byte, 32), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	p := &vault.Profile{ID: vault.NewID(vault.PrefixProfile), UserID: u.ID, Name: "p", Image: "alpine", CreatedAt: now, UpdatedAt: now}
	s := &vault.Secret{ID: vault.NewID(vault.PrefixSecret), UserID: u.ID, Name: "S", Scope: vault.ScopeAll, Version: 1,
		SealedValue: []byte{1}, SealedKey: []byte{2}, MasterKeyID: "00000000", CreatedAt: now, UpdatedAt: now}
	err := db.Update(t.Context(), u.ID, func(tx vault.Tx) error {
		if err := tx.CreateProfile(t.Context(), p); err != nil {
			return err
		}
		return tx.CreateSecret(t.Context(), s)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func(tx vault.Tx) error
	}{
		{"profile, same name", func(tx vault.Tx) error { return tx.CreateProfile(t.Context(), p) }},
		{"profile, other name", func(tx vault.Tx) error { c := *p; c.Name = "q"; return tx.CreateProfile(t.Context(), &c) }},
		{"secret, same name", func(tx vault.Tx) error { return tx.CreateSecret(t.Context(), s) }},
		{"secret, other name", func(tx vault.Tx) error { c := *s; c.Name = "T"; return tx.CreateSecret(t.Context(), &c) }},
	} {
		err := db.Update(t.Context(), u.ID, tc.write)
		if vault.ErrorCode(err) != vault.ECONFLICT || vault.ErrorField(err) != "id" {
			t.Errorf("%s: got %v, want a conflict on id", tc.name, err)
		}
	}
}

// The schema itself keeps a grant within its user, whatever a caller
// hands the store.
func TestGrantToAnotherUsersProfileIsRefusedBySchema(t *testing.T) {
	db := openMigrated(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var users [2]string
	var profiles [2]*vault.Profile
	for i := range users {
		u := &vault.User{ID: vault.NewID(vault.PrefixUser), Name: "u", CreatedAt: now}
		if err := db.CreateUser(t.Context(), u, &vault.Token{ID: vault.NewID(vault.PrefixToken), UserID: u.ID, Name: "t", Scope: vault.TokenFull, Hash: make([]byte, 32), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		users[i] = u.ID
		profiles[i] = &vault.Profile{ID: vault.NewID(vault.PrefixProfile), UserID: u.ID, Name: "p", Image: "alpine", CreatedAt: now, UpdatedAt: now}
		if err := db.Update(t.Context(), u.ID, func(tx vault.Tx) error { return tx.CreateProfile(t.Context(), profiles[i]) }); err != nil {
			t.Fatal(err)
		}
	}
	s := &vault.Secret{ID: vault.NewID(vault.PrefixSecret), UserID: users[0], Name: "S", Scope: vault.ScopeAgents, Version: 1,
		ProfileIDs: []string{profiles[1].ID}, SealedValue: []byte{1}, SealedKey: []byte{2}, MasterKeyID: "00000000", CreatedAt: now, UpdatedAt: now}
	// The rule, and its EINVALID, are the service's
	// (TestGrantToAnotherUsersProfileIsRefusedByService); a caller that
	// skips the service meets the schema's foreign key, an internal error,
	// and nothing is written.
	err := db.Update(t.Context(), users[0], func(tx vault.Tx) error { return tx.CreateSecret(t.Context(), s) })
	if !isForeignKey(err) || vault.ErrorCode(err) != vault.EINTERNAL {
		t.Errorf("store-level grant to another user's profile: got %v, want an internal foreign key error", err)
	}
	if err := db.View(t.Context(), users[0], func(tx vault.Tx) error {
		if n, err := tx.CountSecrets(t.Context()); err != nil || n != 0 {
			t.Errorf("user holds %d secrets (%v) after a refused create, want 0", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = db.write.ExecContext(t.Context(), `INSERT INTO secret_grants (secret_id, profile_id, user_id, name) VALUES (?, ?, ?, ?)`,
		"sec_x", profiles[1].ID, users[0], "S")
	if !isForeignKey(err) {
		t.Errorf("raw insert of a cross-user grant: %v, want a foreign key violation", err)
	}
}
