package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// openDB opens a migrated store on a fresh database.
func openDB(t testing.TB) (*postgres.DB, string) {
	t.Helper()
	url := testenv.RequirePostgres(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db, url
}

func newService(t testing.TB, store vault.Store, opts vault.Options) *vault.Service {
	t.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := vault.NewService(store, keys, opts)
	if err := svc.CheckKeys(context.Background()); err != nil {
		t.Fatalf("check keys: %v", err)
	}
	return svc
}

func mustUser(t testing.TB, svc *vault.Service) string {
	t.Helper()
	u, _, err := svc.CreateUser(context.Background(), "test user")
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u.ID
}

func mustProfile(t testing.TB, svc *vault.Service, userID, name string) *vault.Profile {
	t.Helper()
	p, err := svc.CreateProfile(context.Background(), userID, vault.ProfileInput{Name: name, Image: "debian:12"})
	if err != nil {
		t.Fatalf("create profile %s: %v", name, err)
	}
	return p
}

func mustSecret(t testing.TB, svc *vault.Service, userID string, in vault.SecretInput) *vault.Secret {
	t.Helper()
	s, err := svc.CreateSecret(context.Background(), userID, in)
	if err != nil {
		t.Fatalf("create secret %s: %v", in.Name, err)
	}
	return s
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := vault.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (error: %v)", got, code, err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback refuses at once.
	_, err := postgres.Open(ctx, "postgres://envvault:s3cr3t-pw@127.0.0.1:1/envvault?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("error shows the password: %v", err)
	}
	_, err = postgres.Open(ctx, "postgres://envvault:s3cr3t-pw@127.0.0.1:bad-port/envvault")
	if err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("Open of a bad URL: %v (must fail without showing the password)", err)
	}
}

// TestMigrateConcurrently runs Migrate from several pools at once on one
// fresh database, as several processes starting together would: exactly
// one applies each migration, none fails, and a later run applies nothing.
func TestMigrateConcurrently(t *testing.T) {
	url := testenv.RequirePostgres(t)
	ctx := context.Background()
	const n = 4
	dbs := make([]*postgres.DB, n)
	for i := range dbs {
		db, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	applied := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			applied[i], errs[i] = db.Migrate(ctx)
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("migrate %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	t.Logf("applied per run: %v", applied)
	if total < 1 || slices.Max(applied) != total {
		t.Errorf("applied per run = %v: want all migrations applied by exactly one run", applied)
	}
	again, err := dbs[0].Migrate(ctx)
	if err != nil || again != 0 {
		t.Errorf("migrate again = %d, %v; want 0, nil", again, err)
	}
	// The schema is there and works.
	svc := newService(t, dbs[1], vault.Options{})
	user := mustUser(t, svc)
	mustSecret(t, svc, user, vault.SecretInput{Name: "AFTER_MIGRATE", Value: "works"})
}

// TestConflictByConstraint writes past the service's checks, straight
// through a transaction, so that each unique rule is refused by the
// database itself and comes back as ECONFLICT on the right field.
func TestConflictByConstraint(t *testing.T) {
	db, _ := openDB(t)
	svc := newService(t, db, vault.Options{})
	ctx := context.Background()
	user := mustUser(t, svc)
	prof := mustProfile(t, svc, user, "agent")
	mustSecret(t, svc, user, vault.SecretInput{Name: "TOKEN", Value: "v1"})
	mustSecret(t, svc, user, vault.SecretInput{Name: "TOKEN", Value: "v2", Scope: vault.ScopeAgents, ProfileIDs: []string{prof.ID}})

	now := time.Now().UTC().Truncate(time.Microsecond)
	secret := func(scope vault.Scope, ids ...string) *vault.Secret {
		return &vault.Secret{ID: vault.NewID(vault.PrefixSecret), UserID: user, Name: "TOKEN", Scope: scope, ProfileIDs: ids,
			Version: 1, SealedValue: []byte("sealed"), SealedKey: []byte("key"), MasterKeyID: "00000000", CreatedAt: now, UpdatedAt: now}
	}
	tests := []struct {
		name  string
		fn    func(vault.Tx) error
		field string
	}{
		{"secrets_all_name_key", func(tx vault.Tx) error { return tx.CreateSecret(ctx, secret(vault.ScopeAll)) }, "name"},
		{"secret_grants_profile_name_key", func(tx vault.Tx) error {
			return tx.CreateSecret(ctx, secret(vault.ScopeAgents, prof.ID))
		}, "profile_ids"},
		{"profiles_user_name_key", func(tx vault.Tx) error {
			return tx.CreateProfile(ctx, &vault.Profile{ID: vault.NewID(vault.PrefixProfile), UserID: user, Name: "agent", Image: "x",
				Command: []string{}, SetupCommands: []string{}, Env: map[string]string{}, CreatedAt: now, UpdatedAt: now})
		}, "name"},
		{"secrets_pkey", func(tx vault.Tx) error {
			s := secret(vault.ScopeAgents)
			if err := tx.CreateSecret(ctx, s); err != nil {
				return err
			}
			return tx.CreateSecret(ctx, s)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.Update(ctx, user, tt.fn)
			wantCode(t, err, vault.ECONFLICT)
			if got := vault.ErrorField(err); got != tt.field {
				t.Errorf("field = %q, want %q (error: %v)", got, tt.field, err)
			}
			var ve *vault.Error
			if !errors.As(err, &ve) || strings.Contains(ve.Message, user) {
				t.Errorf("message %q must be a vault error that quotes no row", vault.ErrorMessage(err))
			}
		})
	}
	// Renaming an `agents` secret onto a name its profile already gets.
	other := mustSecret(t, svc, user, vault.SecretInput{Name: "OTHER", Value: "v3", Scope: vault.ScopeAgents, ProfileIDs: []string{prof.ID}})
	err := db.Update(ctx, user, func(tx vault.Tx) error {
		s, err := tx.Secret(ctx, other.ID)
		if err != nil {
			return err
		}
		s.Name = "TOKEN"
		return tx.UpdateSecret(ctx, s, true)
	})
	wantCode(t, err, vault.ECONFLICT)
	if vault.ErrorField(err) != "profile_ids" {
		t.Errorf("rename onto a granted name: %v, want ECONFLICT on profile_ids", err)
	}
}

func TestUnknownUser(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	// The user's check goes with fn's first statement: that call answers
	// ENOTFOUND, and so does a fn that sends nothing, at its commit.
	userID := vault.NewID(vault.PrefixUser)
	err := db.Update(ctx, userID, func(tx vault.Tx) error {
		err := tx.CreateProfile(ctx, &vault.Profile{ID: vault.NewID(vault.PrefixProfile), UserID: userID, Name: "p"})
		if vault.ErrorMessage(err) != "user not found" {
			t.Errorf("first write for a user that does not exist: %v, want ENOTFOUND user not found", err)
		}
		return err
	})
	wantCode(t, err, vault.ENOTFOUND)
	err = db.Update(ctx, vault.NewID(vault.PrefixUser), func(vault.Tx) error { return nil })
	wantCode(t, err, vault.ENOTFOUND)
	err = db.CreateToken(ctx, &vault.Token{ID: vault.NewID(vault.PrefixToken), UserID: vault.NewID(vault.PrefixUser),
		Name: "t", Scope: vault.TokenFull, Hash: make([]byte, 32), CreatedAt: time.Now().UTC()})
	wantCode(t, err, vault.ENOTFOUND)
	_, err = db.Token(ctx, vault.NewID(vault.PrefixToken))
	wantCode(t, err, vault.ENOTFOUND)
}

// TestOtherUsersIDs checks that every Tx method scoped to one user answers
// another user's ids as if they did not exist, and leaves them unchanged.
func TestOtherUsersIDs(t *testing.T) {
	db, _ := openDB(t)
	svc := newService(t, db, vault.Options{})
	ctx := context.Background()
	alice, bob := mustUser(t, svc), mustUser(t, svc)
	prof := mustProfile(t, svc, alice, "alice's")
	sec := mustSecret(t, svc, alice, vault.SecretInput{Name: "ALICE", Value: "only alice", Scope: vault.ScopeAgents, ProfileIDs: []string{prof.ID}})

	err := db.Update(ctx, bob, func(tx vault.Tx) error {
		if _, err := tx.Secret(ctx, sec.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("Secret: %v", err)
		}
		if _, err := tx.Profile(ctx, prof.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("Profile: %v", err)
		}
		if err := tx.DeleteSecret(ctx, sec.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("DeleteSecret: %v", err)
		}
		if err := tx.DeleteProfile(ctx, prof.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("DeleteProfile: %v", err)
		}
		ids, err := tx.ExistingProfileIDs(ctx, []string{prof.ID})
		if err != nil || len(ids) != 0 {
			t.Errorf("ExistingProfileIDs = %v, %v", ids, err)
		}
		for _, f := range []vault.ListFilter{{Limit: 10}, {Query: "ALI", Limit: 10}} {
			if l, err := tx.Secrets(ctx, f); err != nil || len(l) != 0 {
				t.Errorf("Secrets(%+v) = %d, %v", f, len(l), err)
			}
			if l, err := tx.Profiles(ctx, f); err != nil || len(l) != 0 {
				t.Errorf("Profiles(%+v) = %d, %v", f, len(l), err)
			}
		}
		if l, err := tx.SecretsNamed(ctx, "ALICE"); err != nil || len(l) != 0 {
			t.Errorf("SecretsNamed = %d, %v", len(l), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Bob's own secret may not grant Alice's profile: the rule, and its
	// EINVALID, are the service's; a caller that skips the service gets an
	// internal error from the database, and the transaction writes nothing.
	_, err = svc.CreateSecret(ctx, bob, vault.SecretInput{Name: "STEAL", Value: "x", Scope: vault.ScopeAgents, ProfileIDs: []string{prof.ID}})
	if vault.ErrorCode(err) != vault.EINVALID || vault.ErrorField(err) != "profile_ids" {
		t.Errorf("grant another user's profile: %v, want EINVALID on profile_ids", err)
	}
	err = db.Update(ctx, bob, func(tx vault.Tx) error {
		now := time.Now().UTC().Truncate(time.Microsecond)
		return tx.CreateSecret(ctx, &vault.Secret{ID: vault.NewID(vault.PrefixSecret), UserID: bob, Name: "STEAL", Scope: vault.ScopeAgents,
			ProfileIDs: []string{prof.ID}, Version: 1, SealedValue: []byte("x"), SealedKey: []byte("y"), MasterKeyID: "0", CreatedAt: now, UpdatedAt: now})
	})
	if vault.ErrorCode(err) != vault.EINTERNAL {
		t.Errorf("store-level grant of another user's profile: %v, want an internal error", err)
	}
	if err := db.View(ctx, bob, func(tx vault.Tx) error {
		if n, err := tx.CountSecrets(ctx); err != nil || n != 0 {
			t.Errorf("bob holds %d secrets (%v) after a refused create, want 0", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SecretsForProfile(ctx, bob, prof.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("SecretsForProfile of another user's profile: %v", err)
	}
	env, err := svc.GetDecryptedForProfile(ctx, alice, prof.ID)
	if err != nil || env["ALICE"] != "only alice" || len(env) != 1 {
		t.Errorf("alice's env after bob's attempts = %d names, %v", len(env), err)
	}
}

func TestSecretsForProfile(t *testing.T) {
	db, _ := openDB(t)
	svc := newService(t, db, vault.Options{})
	ctx := context.Background()
	user := mustUser(t, svc)
	a, b, c := mustProfile(t, svc, user, "a"), mustProfile(t, svc, user, "b"), mustProfile(t, svc, user, "c")

	if _, err := db.SecretsForProfile(ctx, user, vault.NewID(vault.PrefixProfile)); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("unknown profile: %v, want ENOTFOUND", err)
	}
	if l, err := db.SecretsForProfile(ctx, user, a.ID); err != nil || len(l) != 0 {
		t.Fatalf("profile with no secrets = %d, %v; want none, nil", len(l), err)
	}

	all := mustSecret(t, svc, user, vault.SecretInput{Name: "DB_URL", Value: "postgres://all"})
	over := mustSecret(t, svc, user, vault.SecretInput{Name: "DB_URL", Value: "postgres://a-and-b", Scope: vault.ScopeAgents, ProfileIDs: []string{b.ID, a.ID}})
	onlyC := mustSecret(t, svc, user, vault.SecretInput{Name: "ONLY_C", Value: "c", Scope: vault.ScopeAgents, ProfileIDs: []string{c.ID}})

	got, err := db.SecretsForProfile(ctx, user, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*vault.Secret{}
	for _, s := range got {
		ids[s.ID] = s
	}
	if len(got) != 2 || ids[all.ID] == nil || ids[over.ID] == nil || ids[onlyC.ID] != nil {
		t.Fatalf("SecretsForProfile(a) = %d secrets %v, want %s and %s", len(got), ids, all.ID, over.ID)
	}
	// The rows carry what a release needs, as created; the grants of the
	// `agents` secret name the profile asked for. The whole row, every
	// grant sorted, the description and the times are Secret's to read:
	// checked there, against what was created.
	for _, want := range []*vault.Secret{all, over} {
		got := ids[want.ID]
		if got.UserID != want.UserID || got.Name != want.Name || got.Scope != want.Scope || got.Version != want.Version ||
			!bytes.Equal(got.SealedValue, want.SealedValue) || !bytes.Equal(got.SealedKey, want.SealedKey) || got.MasterKeyID != want.MasterKeyID {
			t.Errorf("SecretsForProfile row of %s differs from what was created", want.ID)
		}
		if stored, err := svc.Secret(ctx, user, want.ID); err != nil || !equalSecret(stored, want) {
			t.Errorf("secret %s as stored differs from what was created (%v)", want.ID, err)
		}
	}
	if !slices.Equal(ids[over.ID].ProfileIDs, []string{a.ID}) || ids[all.ID].ProfileIDs != nil {
		t.Errorf("ProfileIDs = %v and %v, want [%s] and none", ids[over.ID].ProfileIDs, ids[all.ID].ProfileIDs, a.ID)
	}
	wantIDs := []string{a.ID, b.ID}
	slices.Sort(wantIDs)
	if !slices.Equal(over.ProfileIDs, wantIDs) {
		t.Errorf("ProfileIDs = %v, want %v (sorted)", over.ProfileIDs, wantIDs)
	}

	env, err := svc.GetDecryptedForProfile(ctx, user, c.ID)
	if err != nil || len(env) != 2 || env["DB_URL"] != "postgres://all" || env["ONLY_C"] != "c" {
		t.Errorf("env of c = %d names, %v", len(env), err)
	}
	env, err = svc.GetDecryptedForProfile(ctx, user, b.ID)
	if err != nil || len(env) != 1 || env["DB_URL"] != "postgres://a-and-b" {
		t.Errorf("env of b = %d names, %v; want the agents secret to override", len(env), err)
	}

	// Deleting a profile never widens: ONLY_C then grants nobody.
	if err := svc.DeleteProfile(ctx, user, c.ID); err != nil {
		t.Fatal(err)
	}
	left, err := svc.Secret(ctx, user, onlyC.ID)
	if err != nil || left.Scope != vault.ScopeAgents || len(left.ProfileIDs) != 0 {
		t.Fatalf("secret after its only profile went = %+v, %v", left, err)
	}
	env, err = svc.GetDecryptedForProfile(ctx, user, a.ID)
	if err != nil || env["ONLY_C"] != "" {
		t.Errorf("ONLY_C reached profile a after c was deleted: %v", err)
	}
}

func equalSecret(a, b *vault.Secret) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Name == b.Name && a.Scope == b.Scope &&
		slices.Equal(a.ProfileIDs, b.ProfileIDs) && a.Description == b.Description && a.Version == b.Version &&
		bytes.Equal(a.SealedValue, b.SealedValue) && bytes.Equal(a.SealedKey, b.SealedKey) &&
		a.MasterKeyID == b.MasterKeyID && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		a.CreatedAt.Location() == time.UTC && a.UpdatedAt.Location() == time.UTC
}

// TestRoundTrip reads back exactly what was written, times included (UTC,
// microseconds), whatever the session's time zone.
func TestRoundTrip(t *testing.T) {
	db, url := openDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A database whose sessions default to another zone must not shift
	// times; new pool connections pick this up.
	var dbName string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{dbName}.Sanitize()+` SET timezone TO 'Asia/Kathmandu'`); err != nil {
		t.Fatal(err)
	}
	db2, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()

	created := time.Date(2026, 3, 29, 1, 30, 15, 123456000, time.UTC)
	svc := newService(t, db2, vault.Options{Now: func() time.Time { return created }})
	user := mustUser(t, svc)
	prof, err := svc.CreateProfile(ctx, user, vault.ProfileInput{Name: "Café ✓", Image: "ghcr.io/x/y:1",
		Command: []string{"sh", "-c", "echo \"$X\" 'ü'"}, SetupCommands: []string{"apt-get update"}, Env: map[string]string{"MODE": "ci", "EMPTY": ""}})
	if err != nil {
		t.Fatal(err)
	}
	sec := mustSecret(t, svc, user, vault.SecretInput{Name: "ROUND_TRIP", Value: "v", Scope: vault.ScopeAgents,
		ProfileIDs: []string{prof.ID}, Description: "for the round trip ✓"})

	for _, store := range []*postgres.DB{db, db2} {
		err = store.View(ctx, user, func(tx vault.Tx) error {
			gotP, err := tx.Profile(ctx, prof.ID)
			if err != nil {
				return err
			}
			if gotP.CreatedAt != created || gotP.UpdatedAt != created || gotP.Name != prof.Name || gotP.Image != prof.Image ||
				!slices.Equal(gotP.Command, prof.Command) || !slices.Equal(gotP.SetupCommands, prof.SetupCommands) ||
				len(gotP.Env) != 2 || gotP.Env["MODE"] != "ci" || gotP.Env["EMPTY"] != "" {
				t.Errorf("profile read back = %+v, wrote %+v", gotP, prof)
			}
			gotS, err := tx.Secret(ctx, sec.ID)
			if err != nil {
				return err
			}
			if !equalSecret(gotS, sec) || gotS.CreatedAt != created {
				t.Errorf("secret read back = %+v, wrote %+v", gotS, sec)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestListPages(t *testing.T) {
	db, _ := openDB(t)
	svc := newService(t, db, vault.Options{})
	ctx := context.Background()
	user := mustUser(t, svc)
	names := []string{"A", "AB", "A_B", "B", "ZZ", "_X", "API_KEY", "OPENAI_API_KEY"}
	for _, n := range names {
		mustSecret(t, svc, user, vault.SecretInput{Name: n, Value: "v"})
	}
	slices.Sort(names) // byte order, as Go sorts
	var got []string
	cursor := ""
	for range 10 {
		page, err := svc.Secrets(ctx, user, vault.ListOptions{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Items {
			got = append(got, s.Name)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, names) {
		t.Errorf("pages = %v, want %v", got, names)
	}

	page, err := svc.Secrets(ctx, user, vault.ListOptions{Query: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].Name != "API_KEY" || page.Items[1].Name != "OPENAI_API_KEY" {
		t.Errorf("query api = %d items", len(page.Items))
	}
	// LIKE wildcards are plain characters in a query.
	for _, q := range []string{"%", "_", "\\"} {
		page, err := svc.Secrets(ctx, user, vault.ListOptions{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, n := range names {
			if strings.Contains(n, q) {
				want++
			}
		}
		if len(page.Items) != want {
			t.Errorf("query %q = %d items, want %d", q, len(page.Items), want)
		}
	}

	for _, n := range []string{"beta", "Alpha", "alpha two", "Éclair", "éclair du jour"} {
		mustProfile(t, svc, user, n)
	}
	pp, err := svc.Profiles(ctx, user, vault.ListOptions{Query: "ALPHA"})
	if err != nil || len(pp.Items) != 2 {
		t.Errorf("profiles query ALPHA = %d, %v; want 2", len(pp.Items), err)
	}
	// Invalid UTF-8 in a query is the caller's mistake, not a 500.
	_, err = svc.Profiles(ctx, user, vault.ListOptions{Query: "\xff"})
	if vault.ErrorCode(err) != vault.EINVALID {
		t.Errorf("invalid UTF-8 query: %v", err)
	}
}

// TestCanary checks that a plaintext value is nowhere in the database.
func TestCanary(t *testing.T) {
	db, url := openDB(t)
	svc := newService(t, db, vault.Options{})
	ctx := context.Background()
	user := mustUser(t, svc)
	const canary = "CANARY-7f3e9b2a-do-not-leak"
	prof := mustProfile(t, svc, user, "p")
	sec := mustSecret(t, svc, user, vault.SecretInput{Name: "CANARY", Value: canary})
	if _, err := svc.UpdateSecret(ctx, user, sec.ID, vault.SecretPatch{Name: ptr("CANARY_RENAMED")}); err != nil {
		t.Fatal(err)
	}
	env, err := svc.GetDecryptedForProfile(ctx, user, prof.ID)
	if err != nil || env["CANARY_RENAMED"] != canary {
		t.Fatalf("env = %d names, %v", len(env), err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dump string
	err = conn.QueryRow(ctx, `SELECT string_agg(t::text, E'\n') FROM (
		SELECT row_to_json(s)::text AS t FROM secrets s
		UNION ALL SELECT row_to_json(g)::text FROM secret_grants g
		UNION ALL SELECT row_to_json(p)::text FROM profiles p) x`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	hexCanary := fmt.Sprintf("%x", canary)
	if strings.Contains(dump, canary) || strings.Contains(dump, hexCanary) {
		t.Fatal("the plaintext value is stored in the database")
	}
}

func ptr[T any](v T) *T { return &v }

// TestPoolSize checks the connection pool's size: DefaultMaxConns (at
// least 16, so that concurrent writes can wait for one commit to disk
// together) unless the URL names one with pool_max_conns.
func TestPoolSize(t *testing.T) {
	url := testenv.RequirePostgres(t)
	for _, c := range []struct {
		url  string
		want int32
	}{
		{url, postgres.DefaultMaxConns()},
		{url + "&pool_max_conns=3", 3},
	} {
		db, err := postgres.Open(t.Context(), c.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := db.MaxConns(); got != c.want || got < 3 {
			t.Errorf("pool of %d connections, want %d", got, c.want)
		}
		db.Close()
	}
	if n := postgres.DefaultMaxConns(); n < 16 {
		t.Errorf("DefaultMaxConns = %d, want at least 16", n)
	}
}

// TestKeySwapLeavesSecretUnderWrite checks that key rotation's swap leaves
// a secret whose write is under way (the write wrote back or kept the key
// it read, after the swap), and that AwaitSecretWrites returns only once
// that write has ended.
func TestKeySwapLeavesSecretUnderWrite(t *testing.T) {
	db, _ := openDB(t)
	svc := newService(t, db, vault.Options{})
	ctx := context.Background()
	user := mustUser(t, svc)
	sec := mustSecret(t, svc, user, vault.SecretInput{Name: "HELD", Value: "v", Scope: vault.ScopeAll})
	keys, err := db.SealedKeysOfAllUsers(ctx, "00000000", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(keys, func(k vault.SealedKey) bool { return k.SecretID == sec.ID })
	if i < 0 {
		t.Fatalf("secret %s not among the data keys", sec.ID)
	}
	k := keys[i]
	swap := []vault.KeySwap{{SecretID: k.SecretID, Old: k.Sealed, New: append([]byte(nil), k.Sealed...)}}

	locked, release, ended := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		_ = db.Update(ctx, user, func(tx vault.Tx) error {
			if err := tx.Lock(ctx, sec.ID); err != nil {
				return err
			}
			if _, err := tx.Secret(ctx, sec.ID); err != nil { // sends the lock
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	if n, err := db.SwapSealedKeysOfAllUsers(ctx, k.MasterKeyID, swap); err != nil || n != 0 {
		t.Errorf("swap under a write: %d swapped, %v; want 0", n, err)
	}
	awaited := make(chan error, 1)
	go func() { awaited <- db.AwaitSecretWrites(ctx, []vault.SealedKey{k}) }()
	select {
	case err := <-awaited:
		t.Fatalf("AwaitSecretWrites returned while the write held the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
		// The negative case has no event to await; 200 ms bounds it.
	}
	close(release)
	<-ended
	if err := <-awaited; err != nil {
		t.Fatal(err)
	}
	if n, err := db.SwapSealedKeysOfAllUsers(ctx, k.MasterKeyID, swap); err != nil || n != 1 {
		t.Errorf("swap after the write: %d swapped, %v; want 1", n, err)
	}
}

// TestDeferredCheckRollsBack checks that a check sent with COMMIT (the
// user's, a row update's, a kept version's) stops the commit: the
// transaction's other writes, queued with it, are not stored. Each fn
// queues an audit event (no foreign key holds it) and a write whose check
// fails, and returns nil.
func TestDeferredCheckRollsBack(t *testing.T) {
	db, url := openDB(t)
	svc := newService(t, db, vault.Options{})
	ctx := context.Background()
	user := mustUser(t, svc)
	sec := mustSecret(t, svc, user, vault.SecretInput{Name: "S", Value: "v", Scope: vault.ScopeAll})
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	events := func(target string) (n int) {
		t.Helper()
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE target_id = $1`, target).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	event := func(userID, target string) *vault.AuditEvent {
		return &vault.AuditEvent{Time: time.Now().UTC().Truncate(time.Microsecond), Actor: vault.Actor{UserID: userID},
			Action: vault.ActionSecretUpdate, TargetType: vault.TargetSecret, TargetID: target, Details: map[string]any{}}
	}
	gone := vault.NewID(vault.PrefixSecret)
	nobody := vault.NewID(vault.PrefixUser)
	for _, tc := range []struct {
		what, user, target string
		write              func(tx vault.Tx) error
	}{
		{"a user who does not exist", nobody, vault.NewID(vault.PrefixSecret), func(vault.Tx) error { return nil }},
		{"a row update of a secret that is not there", user, gone, func(tx vault.Tx) error {
			s := *sec
			s.ID = gone
			return tx.UpdateSecret(ctx, &s, false)
		}},
		{"a version kept of a secret that is not there", user, gone, func(tx vault.Tx) error {
			return tx.KeepVersion(ctx, &vault.KeptVersion{SecretID: gone, UserID: user, Version: 1, Name: "S",
				SealedValue: []byte{1}, SealedKey: []byte{1}, MasterKeyID: sec.MasterKeyID, ReplacedAt: time.Now().UTC()})
		}},
	} {
		err := db.Update(ctx, tc.user, func(tx vault.Tx) error {
			if err := tx.AppendAudit(ctx, event(tc.user, tc.target)); err != nil {
				return err
			}
			return tc.write(tx)
		})
		wantCode(t, err, vault.ENOTFOUND)
		if n := events(tc.target); n != 0 {
			t.Errorf("%s: ENOTFOUND, but the transaction's audit event was stored (%d)", tc.what, n)
		}
	}
}
